"""Adam fixture: three torch.optim.Adam steps (weight decay on) on a small bottleneck MLP.

Writes tests/fixtures/reference/adam_mlp.safetensors with, in float64:
  init.<name>        parameters and BN buffers before training (state_dict names)
  after.<name>       the same after the steps
  exp_avg.<name>, exp_avg_sq.<name>   Adam's moment estimates after the steps
  input [6,1,2,3], labels [6] (as f64), losses [3] (BCE of softmax, one per step)
metadata: lr, beta1, beta2, eps, weight_decay, steps, hidden, bottleneck, torch version.
Run: /path/to/venv/bin/python tools/reference/make_adam_fixture.py
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.set_default_dtype(torch.float64)
torch.manual_seed(11)


class Mlp(nn.Module):
    """mixbench's `mlp` with hidden [8, 3, 8], bottleneck 1 (Linear + BatchNorm1d, no activation)."""

    def __init__(self):
        super().__init__()
        self.fc0 = nn.Linear(6, 8)
        self.fc1 = nn.Linear(8, 3)
        self.bn1 = nn.BatchNorm1d(3, momentum=0.1)
        self.fc2 = nn.Linear(3, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        h = F.leaky_relu(self.fc0(x.flatten(1)), 0.01)
        h = self.bn1(self.fc1(h))
        h = F.leaky_relu(self.fc2(h), 0.01)
        return self.out(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/reference")
    args = ap.parse_args()
    net = Mlp()
    with torch.no_grad():
        # γ away from 1 so a wrong BN gradient shows.
        net.bn1.weight.uniform_(0.5, 1.5)
    init = {k: v.detach().clone() for k, v in net.state_dict().items() if "num_batches" not in k}
    x = torch.randn(6, 1, 2, 3)
    labels = torch.tensor([0, 3, 1, 2, 3, 0])
    cfg = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-3)
    opt = torch.optim.Adam(net.parameters(), **cfg)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        p = F.softmax(net(x), dim=1)
        t = F.one_hot(labels, 4).to(torch.float64)
        loss = F.binary_cross_entropy(p, t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = {f"init.{k}": v for k, v in init.items()}
    names = dict(net.named_parameters())
    for k, v in net.state_dict().items():
        if "num_batches" not in k:
            out[f"after.{k}"] = v.detach().clone()
    for k, p in names.items():
        st = opt.state[p]
        out[f"exp_avg.{k}"] = st["exp_avg"].clone()
        out[f"exp_avg_sq.{k}"] = st["exp_avg_sq"].clone()
    out["input"] = x
    out["labels"] = labels.to(torch.float64)
    out["losses"] = torch.tensor(losses)
    meta = {
        "lr": "0.01", "beta1": "0.9", "beta2": "0.999", "eps": "1e-08",
        "weight_decay": "0.001", "steps": "3", "torch": torch.__version__,
    }
    out = {k: v.contiguous() for k, v in sorted(out.items())}
    os.makedirs(args.out, exist_ok=True)
    save_file(out, os.path.join(args.out, "adam_mlp.safetensors"), metadata=meta)
    print("losses", losses)


if __name__ == "__main__":
    main()
