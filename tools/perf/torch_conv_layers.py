"""PyTorch's side of the `conv_layer` bench group: each distinct PreActResNet18 width-1 and
width-0.125 convolution (batch 64, 32x32 input) timed as forward, input gradient and weight
gradient apart, on 2 threads (median of 10 after 2 warm-ups, ms).

Run it next to `cargo bench --bench train_step -- conv_layer --warm-up-time 1
--measurement-time 2` on the same machine, e.g.
`/root/.cache/torch-venv/bin/python tools/perf/torch_conv_layers.py`. PyTorch's CPU
convolutions (oneDNN's direct kernels) skip the taps that fall on padding, so on 4x4 and 8x8
maps they do 69% and 84% of the multiply-adds an im2col product does.
"""

import time

import torch

LAYERS = [  # (in channels, map size, out channels, kernel, stride), as in benches/train_step.rs
    (3, 32, 64, 3, 1),
    (64, 32, 64, 3, 1),
    (64, 32, 128, 3, 2),
    (64, 32, 128, 1, 2),
    (128, 16, 128, 3, 1),
    (128, 16, 256, 3, 2),
    (256, 8, 256, 3, 1),
    (256, 8, 512, 3, 2),
    (512, 4, 512, 3, 1),
    (3, 32, 8, 3, 1),  # width 0.125
    (8, 32, 8, 3, 1),
    (8, 32, 16, 3, 2),
    (8, 32, 16, 1, 2),
    (16, 16, 16, 3, 1),
    (16, 16, 32, 3, 2),
    (16, 16, 32, 1, 2),
    (32, 8, 32, 3, 1),
    (32, 8, 64, 3, 2),
    (32, 8, 64, 1, 2),
    (64, 4, 64, 3, 1),
]


def median_ms(f, reps=10):
    f()
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print("| layer | forward | input gradient | weight gradient |\n|---|---|---|---|")
    for ci, h, o, k, s in LAYERS:
        pad = k // 2
        x = torch.randn(64, ci, h, h)
        w = torch.randn(o, ci, k, k) * 0.1
        y = torch.nn.functional.conv2d(x, w, stride=s, padding=pad)
        g = torch.randn_like(y)

        def backward(mask):
            return torch.ops.aten.convolution_backward(
                g, x, w, None, [s, s], [pad, pad], [1, 1], False, [0, 0], 1, mask
            )

        with torch.no_grad():
            fwd = median_ms(lambda: torch.nn.functional.conv2d(x, w, stride=s, padding=pad))
            dx = median_ms(lambda: backward([True, False, False]))
            dw = median_ms(lambda: backward([False, True, False]))
        print(f"| c{ci}_{h}x{h}_o{o}_k{k}_s{s} | {fwd:.2f} | {dx:.2f} | {dw:.2f} |")


if __name__ == "__main__":
    main()
