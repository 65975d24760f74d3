"""PyTorch CPU anchor for `cargo bench --bench mlp_step`: one Adam training step of the App. G
MLP (784 → 3 × 1024 LeakyReLU → 12 Linear+BatchNorm1d bottleneck → 4 × 1024 LeakyReLU → 10),
batch 256, BCE on softmax, with no mixing and with manifold mixup at the bottleneck.

Prints one JSON object: {"torch": version, "threads": n, "none_ms": median, "manifold_ms": median}.
Usage: python tools/bench/torch_mlp_step.py --threads 2 [--steps 30]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AppG(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.Sequential(
            nn.Linear(784, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 12), nn.BatchNorm1d(12),
        )
        self.post = nn.Sequential(
            nn.Linear(12, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 1024), nn.LeakyReLU(),
            nn.Linear(1024, 10),
        )

    def forward(self, x, mix=None):
        h = self.pre(x.flatten(1))
        if mix is not None:
            lam, perm = mix
            h = lam * h + (1 - lam) * h[perm]
        return self.post(h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = AppG()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(256, 1, 28, 28)
    y = F.one_hot(torch.arange(256) % 10, 10).float()
    perm = torch.arange(255, -1, -1)

    def step(mix):
        opt.zero_grad()
        p = F.softmax(net(x, mix), dim=1)
        t = y if mix is None else mix[0] * y + (1 - mix[0]) * y[perm]
        F.binary_cross_entropy(p, t).backward()
        opt.step()

    out = {"torch": torch.__version__, "threads": args.threads}
    for name, mix in [("none", None), ("manifold", (0.7, perm))]:
        for _ in range(5):
            step(mix)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step(mix)
            times.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_ms"] = statistics.median(times)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
