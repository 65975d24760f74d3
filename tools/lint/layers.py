#!/usr/bin/env python3
"""Checks mixbench's module layering: no `crate::<module>` reference from a module to one
ranked above it (see ARCHITECTURE.md, "Layers"),  Exits 1 and names each offending line otherwise."""
import pathlib
import re
import sys

# Top to bottom; a module may use only modules at its own rank or below.
LAYERS = [
    ["main", "lib", "app", "cli"],
    ["ops"],
    ["report"],
    ["harness"],
    ["results"],
    ["suite"],
    ["experiment"],
    ["eval"],
    ["train"],
    ["scoring"],
    ["regularizer"],
    ["model"],
    ["data"],
    ["kernels"],
    ["registry", "params", "numerics", "threads", "memory", "rng", "files", "error"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
ref = re.compile(r"\bcrate::([a-z_]+)")
bad = []
for f in sorted(SRC.rglob("*.rs")):
    rel = f.relative_to(SRC)
    top = rel.parts[0].removesuffix(".rs")
    if top not in RANK:
        bad.append(f"{rel}: module `{top}` has no layer in tools/lint/layers.py")
        continue
    in_tests = False
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if line.strip().startswith("#[cfg(test)]"):
            in_tests = True
        if in_tests or line.strip().startswith("//"):
            continue
        for m in ref.findall(line):
            if m in ("Error", "Result") or m == top:
                continue
            if m not in RANK:
                continue
            if RANK[m] < RANK[top]:
                bad.append(f"{rel}:{n}: `{top}` uses `crate::{m}`, which is above it")
# Files of one module must not import each other in a circle (mod.rs, which declares the
# files and re-exports their types, is left out).
edges = {}
group = re.compile(r"\b(?:super|crate::([a-z_]+))::\{([^}]*)\}")
sub = re.compile(r"\b(?:super|crate::([a-z_]+))::([a-z_]+)\b")
for f in sorted(SRC.rglob("*.rs")):
    rel = f.relative_to(SRC)
    if len(rel.parts) < 2 or rel.name == "mod.rs":
        continue
    mod, me = "/".join(rel.parts[:-1]), rel.stem
    for line in f.read_text().split("#[cfg(test)]")[0].splitlines():
        if line.strip().startswith("//"):
            continue
        names = [(m.group(1), m.group(2)) for m in sub.finditer(line)]
        for m in group.finditer(line):
            names += [(m.group(1), n.strip().split("::")[0]) for n in m.group(2).split(",")]
        for owner, name in names:
            if owner is not None and owner != rel.parts[0]:
                continue
            if (SRC / mod / f"{name}.rs").exists() and name != me:
                edges.setdefault(f"{mod}/{me}", set()).add(f"{mod}/{name}")
def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None
reported = set()
for node in sorted(edges):
    c = cycle_from(node)
    if c and frozenset(c) not in reported:
        reported.add(frozenset(c))
        bad.append("import circle: " + " -> ".join(c))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
