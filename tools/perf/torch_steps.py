"""PyTorch CPU anchors for `tools/perf/side_by_side.py`: exactly the steps of
`cargo bench --bench train_step` (and the eval-mode forward of `--bench evaluation`'s model),
at the same thread count.

- train: one SGD step (lr 0.1, momentum 0.9, Nesterov, weight decay 1e-4) of the reference
  PreActResNet18 (channels round(64·width) per stage base, no final BN-ReLU, 4×4 average
  pooling) on a batch of 64 32×32 images, BCE on softmax; no mixing and manifold mixup at mix
  point 1 (after the stem + first stage), λ = 0.7, reversed permutation.
- eval: eval-mode forward of the same network without autograd, batch 100.

Prints one JSON object {"torch", "threads", "<key>_ms": median, ...}.
Usage: python tools/perf/torch_steps.py --threads 2 [--widths 0.125,1] [--steps 10]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(c, w):
    return max(1, round(c * w))


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, planes, 1, stride, bias=False) if stride != 1 or cin != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


class PreActResNet18(nn.Module):
    def __init__(self, width, classes=10):
        super().__init__()
        c0 = scaled(64, width)
        self.conv1 = nn.Conv2d(3, c0, 3, 1, 1, bias=False)
        stages, cin = [], c0
        for mult, stride in [(1, 1), (2, 2), (4, 2), (8, 2)]:
            planes = scaled(64 * mult, width)
            stages.append(nn.Sequential(Block(cin, planes, stride), Block(planes, planes, 1)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(cin, classes)

    def forward(self, x, mix=None):
        out = self.layer1(self.conv1(x))
        if mix is not None:
            lam, perm = mix
            out = lam * out + (1 - lam) * out[perm]
        out = self.layer4(self.layer3(self.layer2(out)))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


def median_ms(f, steps, warmup=2):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--widths", default="0.125,1")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": args.threads}
    for w in [float(x) for x in args.widths.split(",")]:
        net = PreActResNet18(w)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        x = torch.randn(64, 3, 32, 32)
        y = F.one_hot(torch.arange(64) % 10, 10).float()
        perm = torch.arange(63, -1, -1)

        def step(mix):
            opt.zero_grad()
            p = F.softmax(net(x, mix), dim=1)
            t = y if mix is None else mix[0] * y + (1 - mix[0]) * y[perm]
            F.binary_cross_entropy(p, t).backward()
            opt.step()

        steps = args.steps if w < 1 else max(3, args.steps // 2)
        out[f"train_w{w}_none_ms"] = median_ms(lambda: step(None), steps)
        out[f"train_w{w}_manifold_ms"] = median_ms(lambda: step((0.7, perm)), steps)
        net.eval()
        xe = torch.randn(100, 3, 32, 32)
        with torch.no_grad():
            out[f"eval_w{w}_b100_ms"] = median_ms(lambda: net(xe), steps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
