#!/usr/bin/env python3
"""Independent expected values for the evaluators (numpy only; rerunnable).

Writes two small JSON fixtures under tests/fixtures/reference/:

* ``sv_classes.json`` -- the ``singular_values`` evaluator at mix point 0 (the representation
  there is the normalised input itself, so it is known without any network). A hand-made
  1x2x3 dataset with 4 classes whose pixel matrices differ per class (class 3 has no test
  image); for each case (split, center, per_class) the expected per-class spectra
  (``np.linalg.svd`` of exactly that class's rows, the first ``per_class`` of them in split
  order, centred per column when asked), the spectrum of all those rows together, and the
  metrics ``top_mean`` / ``rest_sum_mean`` (means over the classes present) and
  ``all_top`` / ``all_rest_sum``.
* ``fgsm_pixel.json`` -- FGSM with epsilon > 0 on a one-hidden-layer ReLU MLP whose weights are
  in the fixture: the input gradient of BCE(softmax(logits), one_hot(y)) is computed
  analytically here, and the expected adversarial inputs are
  x' = (clip(pixel + eps * sign(grad), 0, 1) - mean) / std (clip only when asked) for pixel
  space, x + eps * sign(grad) for normalised space, with the accuracy they give.

Normalisation is reproduced in float32 as the harness computes it:
``(float32(v) / 255 - mean) / std``; everything after that is float64.

Usage: python3 tools/reference/make_eval_fixtures.py
"""

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "reference"


def normalise(images, shape, mean, std):
    """u8 images [N, C*H*W] -> float32 normalised, as `fill_batch` (per channel)."""
    c, h, w = shape
    x = images.astype(np.float32).reshape(len(images), c, h * w)
    m = np.array(mean, dtype=np.float32)[None, :, None]
    s = np.array(std, dtype=np.float32)[None, :, None]
    return ((x / np.float32(255.0) - m) / s).reshape(len(images), -1)


def spectrum(rows, center):
    a = np.array(rows, dtype=np.float64)
    if center:
        a = a - a.mean(axis=0, keepdims=True)
    return np.linalg.svd(a, compute_uv=False).tolist()


def sv_fixture():
    shape = (1, 2, 3)
    mean, std = [0.25], [0.5]
    rng = np.random.default_rng(20240611)
    # Per-class pixel patterns that differ clearly, plus per-image noise.
    base = np.array(
        [
            [200, 180, 160, 40, 20, 10],
            [10, 60, 110, 160, 210, 250],
            [128, 30, 128, 30, 128, 30],
            [90, 90, 90, 200, 200, 200],
        ],
        dtype=np.int64,
    )

    def make(labels):
        imgs = [np.clip(base[l] + rng.integers(-25, 26, size=6), 0, 255) for l in labels]
        return np.array(imgs, dtype=np.uint8)

    splits = {
        "test": [0, 1, 2, 1, 0, 2, 2, 0, 1, 1, 0],
        "train": [3, 2, 0, 1, 3, 0, 2, 1, 3, 0],
    }
    data = {k: (make(v), v) for k, v in splits.items()}
    classes = 4
    cases = []
    for split in ["test", "train"]:
        images, labels = data[split]
        x = normalise(images, shape, mean, std).astype(np.float64)
        for center in [False, True]:
            for per_class in [None, 2]:
                arrays, tops, rests, all_rows = {}, [], [], []
                for c in range(classes):
                    idx = [i for i, l in enumerate(labels) if l == c]
                    if per_class is not None:
                        idx = idx[:per_class]
                    if not idx:
                        continue
                    rows = x[idx]
                    all_rows.extend(rows.tolist())
                    s = spectrum(rows, center)
                    arrays[f"class{c}"] = s
                    tops.append(s[0])
                    rests.append(sum(s[1:]))
                a = spectrum(all_rows, center)
                arrays["all"] = a
                cases.append(
                    {
                        "params": {"point": 0, "split": split, "center": center}
                        | ({} if per_class is None else {"per_class": per_class}),
                        "metrics": {
                            "top_mean": float(np.mean(tops)),
                            "rest_sum_mean": float(np.mean(rests)),
                            "all_top": a[0],
                            "all_rest_sum": sum(a[1:]),
                        },
                        "arrays": arrays,
                        "n": len(labels),
                    }
                )
    return {
        "generator": "tools/reference/make_eval_fixtures.py",
        "numpy": np.__version__,
        "shape": list(shape),
        "num_classes": classes,
        "preprocessing": {"mean": mean, "std": std},
        "splits": {
            k: {"images": v[0].reshape(-1).tolist(), "labels": v[1]} for k, v in data.items()
        },
        "cases": cases,
    }


def mlp_forward(x, p):
    h = x @ p["fc0.weight"].T + p["fc0.bias"]
    a = np.maximum(h, 0.0)
    return h, a @ p["out.weight"].T + p["out.bias"]


def bce_softmax_input_grad(x, y, p, classes):
    """d/dx of mean over N*C of BCE(softmax(z), onehot), chained by hand."""
    h, z = mlp_forward(x, p)
    z = z - z.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    t = np.eye(classes)[y]
    dp = (prob - t) / np.maximum(prob * (1 - prob), 1e-12) / prob.size
    dz = prob * (dp - (dp * prob).sum(axis=1, keepdims=True))
    da = dz @ p["out.weight"]
    dh = da * (h > 0)
    assert np.all(np.abs(h) > 1e-6), "a pre-activation too close to the ReLU kink"
    return dh @ p["fc0.weight"]


def fgsm_fixture():
    shape = (3, 2, 2)
    dim, hidden, classes = 12, 6, 3
    mean, std = [0.375, 0.5, 0.625], [0.25, 0.5, 0.125]
    rng = np.random.default_rng(7)
    p = {
        "fc0.weight": np.round(rng.normal(0, 0.6, (hidden, dim)), 2),
        "fc0.bias": np.round(rng.normal(0.8, 0.2, hidden), 2),
        "out.weight": np.round(rng.normal(0, 0.6, (classes, hidden)), 2),
        "out.bias": np.round(rng.normal(0, 0.1, classes), 2),
    }
    n = 12
    images = rng.integers(0, 256, size=(n, dim)).astype(np.uint8)
    # Saturated pixels, so that clipping to [0, 1] changes the attack.
    images[:, ::3] = np.where(rng.random((n, 4)) < 0.5, 0, 255).astype(np.uint8)
    x = normalise(images, shape, mean, std).astype(np.float64)
    _, z = mlp_forward(x, p)
    # Labels: the clean prediction for most images (so the attack has something to flip),
    # a wrong class for the last two.
    y = z.argmax(axis=1)
    y[-2:] = (y[-2:] + 1) % classes
    g = bce_softmax_input_grad(x, y, p, classes)
    assert np.all(g != 0)
    sgn = np.sign(g)
    ch = np.repeat(np.arange(3), 4)
    m = np.array(mean, dtype=np.float32).astype(np.float64)[ch]
    s = np.array(std, dtype=np.float32).astype(np.float64)[ch]
    cases = []
    for space, eps, clip in [
        ("normalized", 0.3, False),
        ("pixel", 0.05, False),
        ("pixel", 0.05, True),
        ("pixel", 0.15, False),
        ("pixel", 0.15, True),
    ]:
        if space == "normalized":
            adv = x + eps * sgn
        else:
            pix = x * s + m + eps * sgn
            if clip:
                pix = np.clip(pix, 0.0, 1.0)
            adv = (pix - m) / s
        _, za = mlp_forward(adv, p)
        top2 = np.sort(za, axis=1)[:, -2:]
        assert np.all(top2[:, 1] - top2[:, 0] > 1e-6), "an adversarial argmax tie"
        correct = za.argmax(axis=1) == y
        cases.append(
            {
                "params": {"epsilon": eps, "space": space, "clip": clip},
                "adv": adv.reshape(-1).tolist(),
                "correct": correct.tolist(),
                "accuracy": 100.0 * correct.mean(),
            }
        )
    clean_correct = (z.argmax(axis=1) == y).tolist()
    accs = [c["accuracy"] for c in cases]
    # The cases must tell the variants apart: the attack flips examples, clipping matters.
    assert all(a < 100.0 * np.mean(clean_correct) for a in accs), accs
    assert cases[1]["adv"] != cases[2]["adv"]
    return {
        "generator": "tools/reference/make_eval_fixtures.py",
        "numpy": np.__version__,
        "shape": list(shape),
        "num_classes": classes,
        "preprocessing": {"mean": mean, "std": std},
        "params": {k: v.reshape(-1).tolist() for k, v in p.items()},
        "param_shapes": {k: list(v.shape) for k, v in p.items()},
        "images": images.reshape(-1).tolist(),
        "labels": y.tolist(),
        "x": x.reshape(-1).tolist(),
        "grad_sign": sgn.reshape(-1).tolist(),
        "clean_correct": clean_correct,
        "cases": cases,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, f in [("sv_classes.json", sv_fixture), ("fgsm_pixel.json", fgsm_fixture)]:
        text = json.dumps(f(), indent=None, separators=(",", ":"))
        (OUT / name).write_text(text + "\n")
        print(f"wrote {OUT / name} ({len(text)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
