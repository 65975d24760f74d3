"""PyTorch CUDA anchor for `cargo bench --features cuda --bench gpu_train_step`: one SGD step
(lr 0.1, momentum 0.9, Nesterov, weight decay 1e-4) of the reference PreActResNet18 (width 1,
no final BN-ReLU, 4x4 average pooling) on a batch of 128 32x32 images, BCE on softmax, with no
mixing and with manifold mixup after the first stage (mix point 1).

Prints one JSON object: {"torch": version, "gpu": name, "none_ms": median, "manifold_ms": median,
"images_per_s_none": ...}. Usage: python tools/bench/torch_gpu_step.py [--steps 50]
"""
import argparse
import json
import statistics
import time

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_steps import PreActResNet18  # noqa: E402  (the same network as the CPU anchor)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = PreActResNet18(1.0).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    b = args.batch
    x = torch.randn(b, 3, 32, 32, device=dev)
    y = F.one_hot(torch.arange(b, device=dev) % 10, 10).float()
    perm = torch.arange(b - 1, -1, -1, device=dev)

    def step(mix):
        opt.zero_grad()
        p = F.softmax(net(x, mix), dim=1)
        t = y if mix is None else mix[0] * y + (1 - mix[0]) * y[perm]
        F.binary_cross_entropy(p, t).backward()
        opt.step()
        torch.cuda.synchronize()

    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "batch": b}
    for name, mix in [("none", None), ("manifold", (0.7, perm))]:
        for _ in range(5):
            step(mix)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step(mix)
            times.append((time.perf_counter() - t0) * 1000)
        out[f"{name}_ms"] = statistics.median(times)
        out[f"images_per_s_{name}"] = b / (out[f"{name}_ms"] / 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
