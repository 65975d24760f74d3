#!/usr/bin/env python3
"""Lists functions in src/ longer than 120 lines (tests excepted; kernels under src/kernels/
excepted: a SIMD loop nest reads best whole). Exits 1 when any is found."""
import pathlib
import re
import sys

LIMIT = 120
SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
start = re.compile(r"^\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(unsafe\s+)?fn\s+([a-zA-Z0-9_]+)")
long = []
for f in sorted(SRC.rglob("*.rs")):
    rel = f.relative_to(SRC)
    if rel.parts[0] == "kernels":
        continue
    lines = f.read_text().split("#[cfg(test)]")[0].splitlines()
    i = 0
    while i < len(lines):
        m = start.match(lines[i])
        if not m:
            i += 1
            continue
        depth, j, opened = 0, i, False
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if (opened and depth <= 0) or (not opened and code.rstrip().endswith(";")):
                break
            j += 1
        n = j - i + 1
        if n > LIMIT:
            long.append(f"{rel}:{i + 1}: fn {m.group(5)} is {n} lines")
        i = j + 1 if opened else i + 1
for l in long:
    print(l)
sys.exit(1 if long else 0)
