"""The slowest compilation units of a `cargo build --timings` run, as a Markdown table.

    cargo build --release --timings                       # writes target/cargo-timings/cargo-timing.html
    python3 tools/build/slowest_units.py [HTML] [--top 10]

Prints the build's wall time, the number of units, and the top units by duration (with the part
spent generating code, which is what `codegen-units`, opt-level and features change).
"""
import argparse
import json
import os
import re


def units(html):
    text = open(html, encoding="utf-8").read()
    m = re.search(r"const UNIT_DATA = (\[.*?\]);\n", text, re.S)
    if not m:
        raise SystemExit(f"{html}: no UNIT_DATA (not a cargo --timings report?)")
    total = re.search(r"<td>Total time:</td><td>([0-9.]+)s", text)
    return json.loads(m.group(1)), float(total.group(1)) if total else None


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("html", nargs="?", default=os.path.join(target, "cargo-timings", "cargo-timing.html"))
    ap.add_argument("--top", type=int, default=10)
    a = ap.parse_args()
    data, total = units(a.html)
    print(f"{len(data)} units" + (f", {total:.1f} s wall" if total else ""))
    print()
    print("| unit | s | of which codegen s |")
    print("|---|---|---|")
    for u in sorted(data, key=lambda u: -u["duration"])[: a.top]:
        name = f"{u['name']} {u['version']}" + (f" ({u['target'].strip()})" if u.get("target", "").strip() else "")
        sections = dict(u.get("sections") or [])
        cg = sections.get("codegen")
        codegen = f"{cg['end'] - cg['start']:.1f}" if cg else "—"
        print(f"| {name} | {u['duration']:.1f} | {codegen} |")


if __name__ == "__main__":
    main()
