#!/usr/bin/env python3
"""Generate tests/fixtures/reference/pgd.json: PGD in PyTorch (float64) on the FGSM fixture's model.

Reads tests/fixtures/reference/fgsm_pixel.json (a one-hidden-layer ReLU MLP with its weights,
12 images of 3x2x2 pixels, their labels and per-channel normalisation) and runs, for each case,
projected gradient descent written here from its definition, independently of mixbench:

    a_0 = x                      (normalised space)   or   x*std + mean   (pixel space)
    a_{t+1} = a_t + alpha * sign(grad_x loss(model(x(a_t)), y))
              then a = a_0 + clamp(a - a_0, -eps, eps)   when eps is given
              then a = clamp(a, 0, 1)                     when clip (pixel space)
    x(a) = a  or  (a - mean) / std

with the model in eval mode, the loss BCE(softmax(logits), onehot(y)) (mean) or cross-entropy,
torch.sign (0 at 0). It stores the adversarial images (normalised units), the examples still
classified correctly, and the number of nonzero gradient components below 1e-12 of the largest
(signs a different summation order could flip; all cases here have none).

Usage:  <python with torch> tools/reference/make_pgd_fixture.py
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "tests/fixtures/reference/fgsm_pixel.json")
OUT = os.path.join(ROOT, "tests/fixtures/reference/pgd.json")

CASES = [
    {"steps": 3, "step_size": 0.1, "epsilon": None, "space": "normalized", "clip": False, "loss": "bce_softmax"},
    {"steps": 4, "step_size": 0.1, "epsilon": 0.15, "space": "normalized", "clip": False, "loss": "bce_softmax"},
    {"steps": 3, "step_size": 0.05, "epsilon": 0.08, "space": "pixel", "clip": True, "loss": "bce_softmax"},
    {"steps": 5, "step_size": 0.2, "epsilon": None, "space": "pixel", "clip": True, "loss": "cross_entropy"},
]


def main():
    f = json.load(open(SRC))
    torch.set_default_dtype(torch.float64)
    c, h, w = f["shape"]
    k = f["num_classes"]
    p = {n: torch.tensor(v, dtype=torch.float64).reshape(f["param_shapes"][n]) for n, v in f["params"].items()}
    n = len(f["labels"])
    x = torch.tensor(f["x"], dtype=torch.float64).reshape(n, c, h, w)
    y = torch.tensor(f["labels"], dtype=torch.int64)
    mean = torch.tensor(f["preprocessing"]["mean"], dtype=torch.float64).reshape(1, c, 1, 1)
    std = torch.tensor(f["preprocessing"]["std"], dtype=torch.float64).reshape(1, c, 1, 1)

    def model(xn):
        hid = F.relu(xn.reshape(n, -1) @ p["fc0.weight"].T + p["fc0.bias"])
        return hid @ p["out.weight"].T + p["out.bias"]

    def loss_of(name, logits):
        if name == "bce_softmax":
            return F.binary_cross_entropy(F.softmax(logits, dim=1), F.one_hot(y, k).to(torch.float64))
        return F.cross_entropy(logits, y)

    out_cases = []
    for case in CASES:
        pixel = case["space"] == "pixel"
        a0 = x * std + mean if pixel else x.clone()
        a = a0.clone()
        ambiguous = 0
        for _ in range(case["steps"]):
            xn = ((a - mean) / std if pixel else a).detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss_of(case["loss"], model(xn)), xn)
            ambiguous += int(((g != 0) & (g.abs() < 1e-12 * g.abs().max())).sum())
            a = a + case["step_size"] * torch.sign(g)
            if case["epsilon"] is not None:
                a = a0 + torch.clamp(a - a0, -case["epsilon"], case["epsilon"])
            if case["clip"]:
                a = torch.clamp(a, 0.0, 1.0)
        adv = (a - mean) / std if pixel else a
        with torch.no_grad():
            correct = (model(adv).argmax(1) == y).tolist()
            moved = float((adv - x).abs().max())
        out_cases.append({"params": case, "adv": adv.reshape(-1).tolist(), "correct": correct,
                          "ambiguous_signs": ambiguous, "max_change": moved})
        print(f"{case}: correct {sum(correct)}/{n}, max |adv - x| {moved:.4f}, ambiguous signs {ambiguous}")
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).tolist()
    json.dump({"generator": "tools/reference/make_pgd_fixture.py", "torch": torch.__version__,
               "source": "tests/fixtures/reference/fgsm_pixel.json", "clean_correct": clean,
               "cases": out_cases}, open(OUT, "w"), indent=None)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
