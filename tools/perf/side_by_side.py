"""One command for the CPU speed table: mixbench's criterion benches and PyTorch's same steps,
run one after the other on this machine at the same thread count, medians and ratios printed
as Markdown.

    MIXBENCH_TORCH_PYTHON=/path/to/python-with-torch python3 tools/perf/side_by_side.py [--quick] [--rounds N] [--isa avx2]

A shared 2-core VM drifts by 10-30% over minutes, so both sides run in alternation, `--rounds`
times (default 3): each row gives the lowest of each side's per-round medians (the run least
disturbed by the machine) and the ratio of those, plus every round's own ratio to show the spread.

Rows: PreActResNet18 train step (batch 64, 32x32, SGD, BCE on softmax; width 0.125 and 1, no
mixing and manifold mixup at k = 1), eval-mode forward (batch 100), and the App. G MLP Adam step
(batch 256; `cargo bench --bench mlp_step` runs its own PyTorch anchor). Ratio = PyTorch time /
mixbench time (1.0 = par, higher is faster than PyTorch). `--quick` skips width 1.

`--isa avx2` measures both sides as a CPU without AVX-512 (an AMD EPYC before Zen 4) would run
them, on a CPU that has it: mixbench built without its `gemm-avx512` feature (the `gemm`
crate's AVX2 microkernels) with `MIXBENCH_CPU_KERNELS=avx2`, and PyTorch with
`ATEN_CPU_CAPABILITY=avx2`, `ONEDNN_MAX_CPU_ISA=AVX2` and `MKL_ENABLE_INSTRUCTIONS=AVX2`. The
instruction set is the same, the core is not: a proxy, and the output says so.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_name():
    """The CPU model and its widest vector extension, as README's speed table names them."""
    model, flags = platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = "AVX-512" if "avx512f" in flags else "AVX2 + FMA, no AVX-512" if "avx2" in flags else "no AVX2"
    return f"{model} ({simd})"


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def criterion_median_ms(group, bench):
    path = os.path.join(target_dir(), "criterion", group, bench, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1e6


# What `--isa avx2` sets for both sides (see the module doc).
AVX2_ENV = {
    "MIXBENCH_CPU_KERNELS": "avx2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def one_round(filt, widths, threads, cargo_flags):
    """PyTorch's version and (row name, mixbench median ms, PyTorch median ms) for every row,
    mixbench's benches first."""
    subprocess.run(
        ["cargo", "bench", *cargo_flags, "--bench", "train_step", "--", filt],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    mlp = subprocess.run(
        ["cargo", "bench", *cargo_flags, "--bench", "mlp_step"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout
    python = os.environ.get("MIXBENCH_TORCH_PYTHON", "python3")
    torch = json.loads(subprocess.run(
        [python, os.path.join(ROOT, "tools", "perf", "torch_steps.py"), "--threads", str(threads),
         "--widths", ",".join(widths)],
        check=True, capture_output=True, text=True,
    ).stdout)
    rows = []
    for w in widths:
        wf = str(float(w))
        for mix, bench in [("none", "none"), ("manifold", "manifold_k1")]:
            ours = criterion_median_ms("train_step", f"preactresnet18_w{w}_b64_{bench}")
            rows.append((f"train step, PreActResNet18 width {w}, batch 64, {mix}", ours, torch[f"train_w{wf}_{mix}_ms"]))
        ours = criterion_median_ms("eval_forward", f"preactresnet18_w{w}_b100")
        rows.append((f"eval forward, PreActResNet18 width {w}, batch 100", ours, torch[f"eval_w{wf}_b100_ms"]))
    for line in mlp.splitlines():
        m = re.match(r"^appg_b256_(none|manifold)\s+([0-9.]+)\s+([0-9.]+)", line)
        if m:
            rows.append((f"App. G MLP Adam step, batch 256, {m.group(1)}", float(m.group(2)), float(m.group(3))))
    return torch["torch"], rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--isa", choices=["native", "avx2"], default="native")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    cargo_flags, isa_note = [], ""
    if args.isa == "avx2":
        cargo_flags = ["--no-default-features"]
        os.environ.update(AVX2_ENV)
        isa_note = (" Both sides capped at AVX2 (mixbench without `gemm-avx512`, "
                    "MIXBENCH_CPU_KERNELS=avx2; PyTorch with ATEN_CPU_CAPABILITY=avx2, "
                    "ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2): a proxy for a "
                    "CPU without AVX-512, not a measurement of one.")
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1))
    widths = ["0.125"] if args.quick else ["0.125", "1"]
    filt = "preactresnet18_w(" + "|".join(re.escape(w) for w in widths) + ")_b(64|100)"
    runs = [one_round(filt, widths, threads, cargo_flags) for _ in range(args.rounds)]
    version, rounds = runs[0][0], [r for _, r in runs]
    rows = []
    for i, (name, _, _) in enumerate(rounds[0]):
        ours = [r[i][1] for r in rounds]
        theirs = [r[i][2] for r in rounds]
        rows.append((name, min(ours), min(theirs), [t / o for o, t in zip(ours, theirs)]))
    print(f"Measured {datetime.date.today()} on {cpu_name()}, "
          f"{os.cpu_count()} cores, {threads} threads, PyTorch {version}, "
          f"{args.rounds} alternating round(s), lowest median of each side.{isa_note}\n")
    print("| step | mixbench (median) | PyTorch (median) | ratio | ratio per round |\n|---|---|---|---|---|")
    for name, ours, theirs, per_round in rows:
        spread = " / ".join(f"{r:.2f}" for r in per_round)
        print(f"| {name} | {ours:.1f} ms | {theirs:.1f} ms | {theirs / ours:.2f} | {spread} |")


if __name__ == "__main__":
    sys.exit(main())
