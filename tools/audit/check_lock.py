"""Fails when a crate this project compiles has a RustSec advisory (vulnerable, unsound or
unmaintained) or is a version its author marked `+deprecated`.

    python3 tools/audit/check_lock.py

Compiled means reached by `cargo tree` with every feature (cuda too), every target platform and
dev-dependencies. Cargo.lock also lists optional dependencies of dependencies that no feature
turns on (polars' unused back ends, say); those are never built, so they are listed but do not
fail the check.

The advisories come from tools/audit/advisories.json (a committed snapshot; regenerate it with
make_advisories.py). An advisory that must be lived with goes in tools/audit/allowed.toml with
its reason; an allowed id that no longer matches anything is an error too, so the list stays true.
"""
import json
import os
import re
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_version(text):
    """(major, minor, patch, pre) where a release sorts after any pre-release of it."""
    core = text.split("+", 1)[0]
    core, _, pre = core.partition("-")
    parts = [int(p) for p in core.split(".")]
    parts += [0] * (3 - len(parts))
    return (*parts[:3], (1,) if not pre else (0, pre))


def matches(version, requirement):
    """True when `version` satisfies every comma-separated comparator of a semver requirement."""
    v = parse_version(version)
    for comp in requirement.split(","):
        m = re.fullmatch(r"\s*(>=|<=|>|<|=|\^|~)?\s*([0-9][0-9A-Za-z.\-+]*)\s*", comp)
        if not m:
            raise ValueError(f"unreadable version requirement {requirement!r}")
        op, text = m.group(1) or "^", m.group(2)
        r = parse_version(text)
        given = len(text.split("+")[0].split("-")[0].split("."))
        if op == ">=" and not v >= r or op == ">" and not v > r:
            return False
        if op == "<=" and not v <= r or op == "<" and not v < r:
            return False
        if op == "=" and v[:given] != r[:given]:
            return False
        if op in "^~":
            if v < r:
                return False
            if op == "~":
                keep = 2 if given >= 2 else 1
            else:
                # Caret: the first non-zero part (of those given) must stay the same.
                keep = next((i + 1 for i in range(given) if r[i] != 0), given)
            if v[:keep] != r[:keep]:
                return False
    return True


def affected(version, advisory):
    reqs = advisory["patched"] + advisory["unaffected"]
    return not any(matches(version, req) for req in reqs)


def compiled_crates():
    """(name, version) of every crate some build of this project compiles."""
    out = subprocess.check_output(
        ["cargo", "tree", "-e", "normal,build,dev", "--all-features", "--target", "all",
         "--prefix", "none", "-f", "{p}"], cwd=ROOT, text=True)
    found = set()
    for line in out.splitlines():
        name, version = line.split()[:2]
        found.add((name, version.lstrip("v")))
    return found


def main():
    lock_path = os.path.join(ROOT, "Cargo.lock")
    with open(lock_path, "rb") as f:
        packages = tomllib.load(f)["package"]
    compiled = compiled_crates()
    db = json.load(open(os.path.join(HERE, "advisories.json")))
    allowed_path = os.path.join(HERE, "allowed.toml")
    allowed = {}
    if os.path.exists(allowed_path):
        with open(allowed_path, "rb") as f:
            allowed = {a["id"]: a["reason"] for a in tomllib.load(f).get("allow", [])}
    by_package = {}
    for adv in db["advisories"]:
        if not adv["withdrawn"]:
            by_package.setdefault(adv["package"], []).append(adv)
    problems, used, unbuilt = [], set(), []
    for p in packages:
        if "source" not in p:
            continue  # this workspace's own crates
        name, version = p["name"], p["version"]
        found = []
        if "+deprecated" in version:
            found.append(f"{name} {version}: its author marked this version deprecated")
        for adv in by_package.get(name, []):
            if affected(version, adv):
                if adv["id"] in allowed:
                    used.add(adv["id"])
                    continue
                kind = adv["informational"] or "vulnerability"
                found.append(f"{name} {version}: {adv['id']} ({kind}) {adv['title']}")
        if (name, version.split("+")[0]) in compiled or (name, version) in compiled:
            problems += found
        else:
            unbuilt += found
    for stale in sorted(set(allowed) - used):
        problems.append(f"tools/audit/allowed.toml: {stale} matches no crate in Cargo.lock; remove it")
    print(f"{len(packages)} crates in {'Cargo.lock'} checked against "
          f"{len(db['advisories'])} RustSec advisories ({db['date']}, {db['commit'][:12]})")
    for line in unbuilt:
        print(f"  not compiled, in Cargo.lock only: {line}")
    for line in problems:
        print(f"  {line}")
    if problems:
        print(f"{len(problems)} problem(s): update or replace these crates, or allow an advisory "
              "with its reason in tools/audit/allowed.toml", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
