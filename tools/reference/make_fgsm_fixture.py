#!/usr/bin/env python3
"""Generate the FGSM reference fixture for mixbench: tests/fixtures/reference/fgsm.safetensors.

Reuses the model classes, init recipe and deterministic safetensors writer of
make_fixtures.py (which it imports; make_fixtures.py's own outputs are untouched).
For two architectures, the bottleneck MLP and PreActResNet18 at width 1/32, each
built exactly as make_fixtures builds its fixture (torch.manual_seed(0), PyTorch
default init, then randomised BN from a Generator seeded with 0, so parameters and
BN buffers equal `init.*` of mlp.safetensors / preactresnet18.safetensors), it
exports, with the model in eval mode (BN running stats) and computed in float64:

  * clean logits;
  * for loss in {bce_softmax, cross_entropy}: the loss, the input gradient, its sign
    (exact, as float32 -1/0/+1) and the number of ambiguous signs;
  * for eps in {0.03, 0.1}: x_adv = x + eps*sign(grad) (no clipping), logits_adv =
    model(x_adv) and the loss at x_adv.

It also prints (and asserts one of) full-width trainable parameter counts.
See tools/reference/README.md.

Usage:  python tools/reference/make_fgsm_fixture.py [--out DIR]
"""

import argparse
import os
import sys

import numpy as np
import safetensors
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

N = 6
EPSILONS = (0.03, 0.1)
LOSSES = ("bce_softmax", "cross_entropy")
MODELS = (("mlp", 1.0), ("preactresnet18", 1 / 32))  # the widths make_fixtures uses
AMBIGUOUS_REL = 1e-12  # |grad| < AMBIGUOUS_REL * max|grad| (over the whole batch) counts as ambiguous
F32_REL = 1e-6         # informational: signs a float32 gradient could plausibly flip
SIZE_LIMIT = 1000 * 1000


def fgsm_loss(name, logits, y):
    if name == "bce_softmax":  # the reference's training loss, mean over N x classes
        return nn.BCELoss()(F.softmax(logits, dim=1), mf.onehot(y, mf.CLASSES))
    if name == "cross_entropy":
        return F.cross_entropy(logits, y)
    raise ValueError(name)


def eps_tag(eps):
    return f"eps{eps!r}"


def export_model(arch, width, T, meta, ref_dir):
    torch.manual_seed(mf.SEED)
    gen = torch.Generator().manual_seed(mf.SEED)
    model = mf.build(arch, width, mf.CLASSES)  # PyTorch default init, seeded by manual_seed
    mf.randomise_bn(model, gen)
    model.to(mf.COMPUTE)  # exact: every value is a float32
    model.eval()
    n_trainable = mf.trainable_params(model)
    for p in model.parameters():
        p.requires_grad_(False)

    in_shape = (1, 8, 8) if arch == "mlp" else (3, 32, 32)
    x = torch.randn((N,) + in_shape, generator=gen).to(mf.COMPUTE)  # float32 values
    y = torch.randint(0, mf.CLASSES, (N,), generator=gen, dtype=torch.int64)

    # Same initial state as make_fixtures' fixture of this architecture.
    ref_path = os.path.join(ref_dir, f"{arch}.safetensors")
    same_init = None
    if os.path.exists(ref_path):
        ref = load_file(ref_path)
        sd = {n: v for n, v in model.state_dict().items() if not n.endswith("num_batches_tracked")}
        same_init = (set(sd) == {n[5:] for n in ref if n.startswith("init.")}
                     and all(torch.equal(v.to(torch.float32), ref[f"init.{n}"]) for n, v in sd.items()))
        assert same_init, f"{arch}: state differs from init.* of {ref_path}"

    p = arch
    params = dict(model.named_parameters())
    for n, v in model.state_dict().items():
        if n.endswith("num_batches_tracked"):
            continue
        mf.put(T, f"{p}/{'param' if n in params else 'buffer'}/{n}", v)
    mf.put(T, f"{p}/x", x)
    mf.put(T, f"{p}/y", y)
    with torch.no_grad():
        logits = model(x)
    mf.put(T, f"{p}/logits", logits)

    summary = {}
    for ln in LOSSES:
        xi = x.clone().requires_grad_(True)
        li = model(xi)
        assert torch.equal(li.detach(), logits), (arch, ln)
        loss = fgsm_loss(ln, li, y)
        (g,) = torch.autograd.grad(loss, xi)
        s = torch.sign(g)  # -1, 0 (exactly zero gradient), +1
        amax = g.abs().max()
        rel = g.abs() / amax
        n_amb = int((rel < AMBIGUOUS_REL).sum())
        n_f32 = int((rel < F32_REL).sum())
        min_rel = float(rel.min())
        mf.put(T, f"{p}/{ln}/loss", loss.reshape(1))
        mf.put(T, f"{p}/{ln}/input_grad", g)
        mf.put(T, f"{p}/{ln}/grad_sign", s)
        mf.put(T, f"{p}/{ln}/n_ambiguous_sign", torch.tensor([n_amb], dtype=torch.int64))
        meta[f"{p}/{ln}/n_ambiguous_sign"] = str(n_amb)
        meta[f"{p}/{ln}/n_rel_below_1e-6"] = str(n_f32)
        meta[f"{p}/{ln}/min_rel_abs_grad"] = f"{min_rel:.3e}"
        meta[f"{p}/{ln}/max_abs_grad"] = f"{float(amax):.6e}"
        line = [f"{arch:15s} {ln:13s} loss={loss.item():.6f} max|g|={float(amax):.3e} "
                f"min|g|/max={min_rel:.3e} ambiguous={n_amb} (<1e-6 rel: {n_f32})"]
        for eps in EPSILONS:
            x_adv = x + eps * s  # float64; eps is the float64 value of the decimal literal
            with torch.no_grad():
                la = model(x_adv)
            loss_adv = fgsm_loss(ln, la, y)
            assert loss_adv.item() > loss.item(), (arch, ln, eps)  # FGSM must increase the loss
            t = f"{p}/{ln}/{eps_tag(eps)}"
            mf.put(T, f"{t}/x_adv", x_adv)
            mf.put(T, f"{t}/logits_adv", la)
            mf.put(T, f"{t}/loss_adv", loss_adv.reshape(1))
            acc = (la.argmax(1) == y).sum().item()
            line.append(f"  eps={eps}: loss_adv={loss_adv.item():.6f} correct {acc}/{N} "
                        f"(clean {(logits.argmax(1) == y).sum().item()}/{N})")
        summary[ln] = n_amb
        print("\n".join(line))

    meta[f"{p}/width"] = f"{width!r}"
    meta[f"{p}/input_shape"] = "x".join(str(s) for s in in_shape)
    meta[f"{p}/trainable_params"] = str(n_trainable)
    meta[f"{p}/same_init_as"] = f"{arch}.safetensors init.*" if same_init else "not checked"
    return summary


def full_width_counts():
    """Trainable parameters at full width, reference definitions (WRN: bias=True convs, no dropout)."""
    out = {}
    for depth in (16, 22, 28):
        for classes in (10, 100):
            out[f"WRN-{depth}-10 classes={classes}"] = mf.trainable_params(
                mf.Wide_ResNet(depth, 10, 1.0, classes))
    for classes in (10, 100):
        out[f"PreActResNet18 classes={classes}"] = mf.trainable_params(
            mf.build("preactresnet18", 1.0, classes))
    assert out["WRN-28-10 classes=10"] == 36_489_290, out["WRN-28-10 classes=10"]
    assert out["PreActResNet18 classes=10"] == 11_171_146, out["PreActResNet18 classes=10"]
    try:
        mf.Wide_ResNet(20, 10, 1.0, 10)
        wrn20 = True
    except AssertionError:
        wrn20 = False
    assert not wrn20, "WRN-20-10 should not be constructible"
    out["WRN-20-10"] = "not constructible: the reference asserts (depth-4) % 6 == 0"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ref_dir = os.path.join(root, "tests", "fixtures", "reference")
    ap.add_argument("--out", default=ref_dir)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)

    print(f"torch {torch.__version__}, numpy {np.__version__}, safetensors {safetensors.__version__}, "
          f"python {sys.version.split()[0]}")
    for k, v in full_width_counts().items():
        print(f"full-width trainable params {k:28s}: {v:,}" if isinstance(v, int) else
              f"full-width trainable params {k:28s}: {v}")

    T = {}
    meta = {
        "models": ",".join(a for a, _ in MODELS),
        "batch": str(N),
        "classes": str(mf.CLASSES),
        "seed": str(mf.SEED),
        "epsilons": ",".join(repr(e) for e in EPSILONS),
        "losses": ",".join(LOSSES),
        "mode": "eval",
        "compute_dtype": str(mf.COMPUTE).replace("torch.", ""),
        "ambiguous_rel": repr(AMBIGUOUS_REL),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": sys.version.split()[0],
        "note": ("FGSM reference fixture (eval mode, float64 compute, stored float32): "
                 "bce_softmax = BCELoss()(softmax(logits,1), onehot(y)), mean; cross_entropy = "
                 "F.cross_entropy(logits, y); x_adv = x + eps*sign(input_grad) in float64, no clipping; "
                 "logits_adv from the float64 x_adv; grad_sign exact (-1/0/+1); n_ambiguous_sign = "
                 "#{|g| < ambiguous_rel * max|g|}; models built as make_fixtures.py builds them; "
                 "see tools/reference/README.md"),
    }
    for arch, width in MODELS:
        export_model(arch, width, T, meta, ref_dir)

    path = os.path.join(args.out, "fgsm.safetensors")
    mf.save_safetensors(T, path, meta)
    back = load_file(path)
    with safe_open(path, "pt") as f:
        assert f.metadata() == meta
    assert set(back) == set(T)
    for n in T:
        assert torch.equal(back[n], T[n]), n
    size = os.path.getsize(path)
    print(f"wrote {path}: {len(T)} tensors, {size} B")
    assert size < SIZE_LIMIT, size


if __name__ == "__main__":
    main()
