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

import torch
import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != planes:
            self.shortcut = nn.Conv2d(cin, planes, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        short = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + short


class PreActResNet18(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        layers, cin = [], 64
        for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks = [PreActBlock(cin, planes, stride), PreActBlock(planes, planes, 1)]
            cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, classes)

    def forward(self, x, mix=None):
        out = self.layer1(self.conv1(x))
        if mix is not None:
            lam, perm = mix
            out = lam * out + (1 - lam) * out[perm]
        out = self.layer4(self.layer3(self.layer2(out)))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = PreActResNet18().to(dev)
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
