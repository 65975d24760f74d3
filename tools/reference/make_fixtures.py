#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for mixbench (issue #5, Python side).

Re-implements, module for module, the architectures of the Manifold Mixup
reference code (vikasverma1077/manifold_mixup, supervised/models/preresnet.py
and supervised/models/wide_resnet.py) plus mixbench's own bottleneck MLP, with
a channel-width multiplier, and writes one safetensors file per architecture
into tests/fixtures/reference/.  Module names follow the reference code, so
the PyTorch state_dict names are the tensor names the Rust side uses.

Parameters and inputs are float32 values; every exported quantity is computed
in float64 (see COMPUTE) and stored as float32.  Everything runs on the CPU,
single-threaded, with
torch.use_deterministic_algorithms(True).  See tools/reference/README.md.

Usage:  python tools/reference/make_fixtures.py [--out DIR]
"""

import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

LAMBDA = 0.3
N = 8
CLASSES = 10
SEED = 0
LR, MOMENTUM, WEIGHT_DECAY, NESTEROV, SGD_STEPS = 0.1, 0.9, 1e-4, True, 2
SIZE_LIMIT = 4 * 1000 * 1000  # "under 4 MB" (decimal, the stricter reading)

LOSSES = ("bce_softmax", "soft_cross_entropy")
# Parameters and inputs are drawn in float32 (so both sides start from identical values), but
# every reference quantity is computed in float64 and only then rounded to float32 for storage.
# A float32 forward on either side differs from the true one by ~1e-6 relative, which flips
# ReLUs whose input lies that close to zero and moves gradients by percents; computed in
# float64 the reference is exact to far below the 1e-4 tolerance, kinks included.
COMPUTE = torch.float64


def scale(c, width):
    """Channel count under a width multiplier: max(1, floor(c*width + 0.5))."""
    return max(1, int(math.floor(c * width + 0.5)))


def mix(h, lam, perm):
    """Reference mixup_process with an injected permutation: lam*h + (1-lam)*h[perm]."""
    return h * lam + h[perm] * (1.0 - lam)


# --------------------------------------------------------------------------
# PreActResNet (supervised/models/preresnet.py), PreActBlock only
# --------------------------------------------------------------------------
class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = out + shortcut
        return out


class PreActResNet(nn.Module):
    mix_points = 5  # k = 0 (input), 1 (conv1+layer1), 2, 3, 4 (layer4, before pooling)

    def __init__(self, num_blocks, width, num_classes):
        super().__init__()
        c = [scale(x, width) for x in (64, 128, 256, 512)]
        self.in_planes = c[0]
        self.conv1 = nn.Conv2d(3, c[0], 3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(c[0], num_blocks[0], 1)
        self.layer2 = self._make_layer(c[1], num_blocks[1], 2)
        self.layer3 = self._make_layer(c[2], num_blocks[2], 2)
        self.layer4 = self._make_layer(c[3], num_blocks[3], 2)
        self.linear = nn.Linear(c[3], num_classes)

    def _make_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(PreActBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x, k=None, lam=None, perm=None):
        # Same structure as the reference forward(): the `layer_mix` if-chain.
        out = x
        if k == 0:
            out = mix(out, lam, perm)
        out = self.conv1(out)
        out = self.layer1(out)
        if k == 1:
            out = mix(out, lam, perm)
        out = self.layer2(out)
        if k == 2:
            out = mix(out, lam, perm)
        out = self.layer3(out)
        if k == 3:
            out = mix(out, lam, perm)
        out = self.layer4(out)
        if k == 4:
            out = mix(out, lam, perm)
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)

    def stages(self):
        """Forward split at the mix points (for the cross-check only)."""
        return [
            lambda h: self.layer1(self.conv1(h)),
            self.layer2,
            self.layer3,
            self.layer4,
            lambda h: self.linear(F.avg_pool2d(h, 4).flatten(1)),
        ]


# --------------------------------------------------------------------------
# Wide ResNet (supervised/models/wide_resnet.py), dropout removed as in HEAD
# --------------------------------------------------------------------------
class wide_basic(nn.Module):  # noqa: N801  (reference name)
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=True))

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = out + self.shortcut(x)
        return out


class Wide_ResNet(nn.Module):  # noqa: N801
    mix_points = 4  # k = 0 (input), 1 (conv1+layer1), 2 (layer2), 3 (layer3)

    def __init__(self, depth, widen_factor, width, num_classes):
        super().__init__()
        assert (depth - 4) % 6 == 0
        n = (depth - 4) // 6
        st = [scale(x, width) for x in (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)]
        self.in_planes = st[0]
        self.conv1 = nn.Conv2d(3, st[0], 3, stride=1, padding=1, bias=True)
        self.layer1 = self._wide_layer(st[1], n, 1)
        self.layer2 = self._wide_layer(st[2], n, 2)
        self.layer3 = self._wide_layer(st[3], n, 2)
        self.bn1 = nn.BatchNorm2d(st[3], momentum=0.9)
        self.linear = nn.Linear(st[3], num_classes)

    def _wide_layer(self, planes, n, stride):
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(wide_basic(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x, k=None, lam=None, perm=None):
        out = x
        if k == 0:
            out = mix(out, lam, perm)
        out = self.conv1(out)
        out = self.layer1(out)
        if k == 1:
            out = mix(out, lam, perm)
        out = self.layer2(out)
        if k == 2:
            out = mix(out, lam, perm)
        out = self.layer3(out)
        if k == 3:
            out = mix(out, lam, perm)
        out = F.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(out.size(0), -1)
        return self.linear(out)

    def stages(self):
        return [
            lambda h: self.layer1(self.conv1(h)),
            self.layer2,
            self.layer3,
            lambda h: self.linear(F.avg_pool2d(F.relu(self.bn1(h)), 8).flatten(1)),
        ]


# --------------------------------------------------------------------------
# mixbench bottleneck MLP
# --------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, in_features, hidden, bottleneck, num_classes):
        super().__init__()
        self.hidden = list(hidden)
        self.bottleneck = bottleneck
        self.mix_points = len(hidden) + 1
        prev = in_features
        for i, h in enumerate(hidden):
            setattr(self, f"fc{i}", nn.Linear(prev, h))
            if i == bottleneck:
                setattr(self, f"bn{i}", nn.BatchNorm1d(h))
            prev = h
        self.out = nn.Linear(prev, num_classes)

    def _hidden(self, i, h):
        h = getattr(self, f"fc{i}")(h)
        if i == self.bottleneck:
            return getattr(self, f"bn{i}")(h)
        return F.leaky_relu(h, negative_slope=0.01)

    def forward(self, x, k=None, lam=None, perm=None):
        h = x.flatten(1)
        if k == 0:
            h = mix(h, lam, perm)
        for i in range(len(self.hidden)):
            h = self._hidden(i, h)
            if k == i + 1:
                h = mix(h, lam, perm)
        return self.out(h)

    def stages(self):
        st = [(lambda i: (lambda h: self._hidden(i, h)))(i) for i in range(len(self.hidden))]
        return st + [self.out]

    def forward_staged_input(self, x):
        return x.flatten(1)


# --------------------------------------------------------------------------
def build(arch, width, classes):
    if arch == "preactresnet18":
        return PreActResNet([2, 2, 2, 2], width, classes)
    if arch == "preactresnet34":
        return PreActResNet([3, 4, 6, 3], width, classes)
    if arch == "wrn28_10":
        return Wide_ResNet(28, 10, width, classes)
    if arch == "mlp":
        return MLP(1 * 8 * 8, [32, 32, 6, 32], 2, classes)
    raise ValueError(arch)


def staged_forward(model, x, k=None, lam=None, perm=None):
    """Independent composition of the forward from stage functions, mixing
    between them; used only to cross-check the if-chain forward."""
    h = model.forward_staged_input(x) if isinstance(model, MLP) else x
    if k == 0:
        h = mix(h, lam, perm)
    for i, f in enumerate(model.stages()):
        h = f(h)
        if k == i + 1:
            h = mix(h, lam, perm)
    return h


def onehot(y, classes):
    return F.one_hot(y, classes).to(COMPUTE)


def soft_targets(y, classes, k, lam, perm):
    t = onehot(y, classes)
    if k is None:
        return t
    return t * lam + t[perm] * (1.0 - lam)


def loss_fn(name, logits, t):
    if name == "bce_softmax":
        return F.binary_cross_entropy(F.softmax(logits, dim=1), t)
    if name == "soft_cross_entropy":
        return -(t * F.log_softmax(logits, dim=1)).sum(1).mean()
    raise ValueError(name)


def case_k(case):
    return None if case == "none" else int(case[3:])


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(1.0 + torch.randn(c, generator=gen) * 0.1)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def buffers(model):
    return {n: b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")}


def trainable_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_safetensors(tensors, path, metadata):
    """Byte-reproducible safetensors writer (the `safetensors` package writes the
    metadata map in hash order, so its files differ between runs).  Header keys
    sorted, tensors laid out in sorted-name order, header space-padded to a
    multiple of 8 bytes; the result is read back with safetensors.load_file."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = dict(sorted(metadata.items()))
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def put(d, name, t):
    assert name not in d, name
    d[name] = t.detach().to(torch.float32 if t.is_floating_point() else t.dtype).contiguous().clone()


def make_fixture(arch, width, out_dir):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = build(arch, width, CLASSES)  # PyTorch default init, seeded by manual_seed
    randomise_bn(model, gen)
    model.to(COMPUTE)  # exact: every value is a float32
    model.train()

    in_shape = (1, 8, 8) if arch == "mlp" else (3, 32, 32)
    x = torch.randn((N,) + in_shape, generator=gen).to(COMPUTE)
    y = torch.randint(0, CLASSES, (N,), generator=gen, dtype=torch.int64)
    while True:  # a permutation without fixed points, so every row is mixed
        perm = torch.randperm(N, generator=gen)
        if bool((perm != torch.arange(N)).all()):
            break
    lam = torch.tensor([LAMBDA], dtype=torch.float32)
    lam_s = lam[0].to(COMPUTE)  # 0-dim for broadcasting; the float32 value, exactly
    K = model.mix_points
    M = 3 if arch == "mlp" else 2

    init = copy.deepcopy(model.state_dict())
    fresh = lambda: copy.deepcopy(model)  # noqa: E731

    T = {}
    put(T, "input", x)
    put(T, "labels", y)
    put(T, "perm", perm)
    put(T, "lambda", lam)
    for n, v in init.items():
        if n.endswith("num_batches_tracked"):
            continue
        put(T, f"init.{n}", v)

    # logits (no mixing): train mode and eval mode; running stats after one train forward
    m = fresh().train()
    with torch.no_grad():
        logits_train = m(x)
    put(T, "logits.train", logits_train)
    for n, b in buffers(m).items():
        put(T, f"bn_after_train_forward.{n}", b)
    m = fresh().eval()
    with torch.no_grad():
        put(T, "logits.eval", m(x))

    cases = ["none"] + [f"mix{k}" for k in range(K)]
    grad_pairs = {("none", "bce_softmax"), ("mix0", "bce_softmax"),
                  (f"mix{M}", "bce_softmax"), (f"mix{M}", "soft_cross_entropy")}
    input_grad_pairs = {("none", "bce_softmax"), (f"mix{M}", "bce_softmax")}
    losses = {}
    case_logits = {}
    for case in cases:
        k = case_k(case)
        t = soft_targets(y, CLASSES, k, lam_s, perm)
        for ln in LOSSES:
            m = fresh().train()
            xi = x.clone().requires_grad_(True)
            logits = m(xi, k, lam_s, perm)
            # cross-check the if-chain forward against the staged composition
            with torch.no_grad():
                ref = staged_forward(fresh().train(), x, k, lam_s, perm)
            assert torch.equal(ref, logits.detach()), (arch, case, (ref - logits).abs().max())
            loss = loss_fn(ln, logits, t)
            losses[(case, ln)] = loss.item()
            put(T, f"loss.{case}.{ln}", loss.reshape(1))
            if ln == "bce_softmax" and case != "none":
                case_logits[case] = logits.detach()
                put(T, f"logits.{case}", logits)
            if (case, ln) in grad_pairs or (case, ln) in input_grad_pairs:
                loss.backward()
                if (case, ln) in grad_pairs:
                    for n, p in m.named_parameters():
                        put(T, f"grad.{case}.{ln}.{n}", p.grad)
                if (case, ln) in input_grad_pairs:
                    put(T, f"input_grad.{case}.{ln}", xi.grad)

    # ---- self-checks on the mixing semantics ----
    one = torch.tensor(1.0, dtype=COMPUTE)
    for k in range(K):  # lambda = 1 at any point == no mixing
        with torch.no_grad():
            l1 = fresh().train()(x, k, one, perm)
        assert torch.equal(l1, logits_train), (arch, k)
        t1 = soft_targets(y, CLASSES, k, one, perm)
        assert torch.equal(t1, onehot(y, CLASSES))
    ident = torch.arange(N)
    with torch.no_grad():  # identity permutation == no mixing (up to rounding)
        li = fresh().train()(x, 1, lam_s, ident)
    assert torch.allclose(li, logits_train, atol=1e-5), arch
    # Mixing at the last point, when everything after it is affine and
    # batch-independent (PreActResNet: avgpool+linear; MLP: the out layer),
    # must mix the logits:  logits_mixLast = lam*logits + (1-lam)*logits[perm].
    if arch != "wrn28_10":
        last = f"mix{K - 1}"
        want = mix(logits_train, lam_s, perm)
        assert torch.allclose(case_logits[last], want, atol=1e-5), (arch, last)
    # Mixing at a real hidden point must change the logits.
    for case, lg in case_logits.items():
        assert not torch.allclose(lg, logits_train), (arch, case)

    # ---- two SGD steps (nesterov, weight decay) on mixM + bce_softmax ----
    m = fresh().train()
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, nesterov=NESTEROV,
                          weight_decay=WEIGHT_DECAY, foreach=False)
    tM = soft_targets(y, CLASSES, M, lam_s, perm)
    sgd_losses = []
    for _ in range(SGD_STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn("bce_softmax", m(x, M, lam_s, perm), tM)
        sgd_losses.append(loss.item())
        loss.backward()
        opt.step()
    assert abs(sgd_losses[0] - losses[(f"mix{M}", "bce_softmax")]) == 0.0
    put(T, "sgd.loss", torch.tensor(sgd_losses, dtype=torch.float32))
    for n, p in m.named_parameters():
        put(T, f"sgd.param.{n}", p)
        put(T, f"sgd.momentum.{n}", opt.state[p]["momentum_buffer"])
    for n, b in buffers(m).items():
        put(T, f"sgd.buffer.{n}", b)

    meta = {
        "arch": arch,
        "width": f"{width!r}",
        "classes": str(CLASSES),
        "batch": str(N),
        "input_shape": "x".join(str(s) for s in in_shape),
        "mix_points": str(K),
        "M": str(M),
        "lambda": repr(LAMBDA),
        "seed": str(SEED),
        "compute_dtype": str(COMPUTE).replace("torch.", ""),
        "torch": torch.__version__,
        "lr": repr(LR),
        "momentum": repr(MOMENTUM),
        "weight_decay": repr(WEIGHT_DECAY),
        "nesterov": str(NESTEROV).lower(),
        "steps": str(SGD_STEPS),
        "trainable_params": str(trainable_params(model)),
        "note": ("Manifold Mixup reference fixture: state_dict names verbatim; mixing "
                 "h=lam*h+(1-lam)*h[perm] at point k; all loss/grad/sgd quantities in train "
                 "mode from a fresh copy of init.*; see tools/reference/README.md"),
    }
    if arch == "mlp":
        meta["hidden"] = ",".join(str(h) for h in model.hidden)
        meta["bottleneck"] = str(model.bottleneck)
        meta["negative_slope"] = "0.01"
    else:
        meta["channels"] = ",".join(str(model.conv1.out_channels if i == 0 else getattr(model, f"layer{i}")[0].conv2.out_channels)
                                    for i in range(0, 5 if arch != "wrn28_10" else 4))
    path = os.path.join(out_dir, f"{arch}.safetensors")
    save_safetensors(T, path, meta)

    # round trip through the official reader
    back = load_file(path)
    with safe_open(path, "pt") as f:
        assert f.metadata() == meta
    assert set(back) == set(T)
    for n in T:
        assert torch.equal(back[n], T[n]), n
    size = os.path.getsize(path)
    print(f"{arch:16s} width={width!r:<8} params={trainable_params(model):>7d} tensors={len(T):4d} "
          f"size={size:>9d} B  loss.none.bce={losses[('none', 'bce_softmax')]:.6f} "
          f"loss.mix{M}.bce={losses[(f'mix{M}', 'bce_softmax')]:.6f} sgd.loss={sgd_losses}")
    return size


def full_width_counts():
    out = {}
    for arch in ("preactresnet18", "preactresnet34", "wrn28_10"):
        for classes in (10, 100):
            out[(arch, classes)] = trainable_params(build(arch, 1.0, classes))
    assert out[("preactresnet18", 10)] == 11_171_146, out[("preactresnet18", 10)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "reference"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    os.makedirs(args.out, exist_ok=True)

    print(f"torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for (arch, classes), n in full_width_counts().items():
        print(f"full-width trainable params {arch:16s} classes={classes:3d}: {n:,}")

    fixtures = [("preactresnet18", 1 / 32), ("preactresnet34", 1 / 32),
                ("wrn28_10", 1 / 32), ("mlp", 1.0)]
    total = sum(make_fixture(a, w, args.out) for a, w in fixtures)
    print(f"total fixture size: {total} B ({total / 1e6:.3f} MB)")
    assert total < SIZE_LIMIT, total


if __name__ == "__main__":
    main()
