#!/usr/bin/env python3
"""Summarise cargo-mutants output folders into the rows of tests/MUTANTS.md.

Usage: summarize.py OUT_ROOT [--missed]
OUT_ROOT holds one folder per file, each with mutants.out/outcomes.json (tools/mutants/run.sh).
Prints one Markdown row per file (mutants, caught, missed, unviable, timeouts, minutes) and,
with --missed, every missed or timed-out mutant with its line, for triage.
"""
import json
import pathlib
import re
import sys

SUMMARY_KEYS = {
    "CaughtMutant": "caught",
    "MissedMutant": "missed",
    "Unviable": "unviable",
    "Timeout": "timeout",
}


def failing_tests(log_path):
    """Names of the tests that failed in a mutant's log: who caught it."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    return sorted(set(re.findall(r"^test (\S+) \.\.\. FAILED", text, re.M)))


def summarize(folder):
    out = folder / "mutants.out"
    data = json.loads((out / "outcomes.json").read_text())
    counts = {v: 0 for v in SUMMARY_KEYS.values()}
    seconds = 0.0
    files = set()
    missed = []
    catchers = {}
    for outcome in data["outcomes"]:
        scenario = outcome["scenario"]
        if not isinstance(scenario, dict) or "Mutant" not in scenario:
            continue
        mutant = scenario["Mutant"]
        files.add(mutant["file"])
        kind = SUMMARY_KEYS.get(outcome["summary"])
        if kind is None:
            continue
        counts[kind] += 1
        seconds += sum(p.get("duration", 0.0) for p in outcome.get("phase_results", []))
        if kind in ("missed", "timeout"):
            missed.append((kind, mutant["name"]))
        elif kind == "caught":
            for test in failing_tests(out / outcome["log_path"]):
                catchers[test] = catchers.get(test, 0) + 1
    return files, counts, seconds, missed, catchers


def main():
    root = pathlib.Path(sys.argv[1])
    show_missed = "--missed" in sys.argv[2:]
    print("| file | mutants | caught | missed | unviable | timeouts | minutes |")
    print("|---|---|---|---|---|---|---|")
    details = []
    for folder in sorted(p for p in root.iterdir() if (p / "mutants.out/outcomes.json").exists()):
        files, c, seconds, missed, catchers = summarize(folder)
        total = sum(c.values())
        name = ", ".join(sorted(files)) or folder.name
        print(f"| {name} | {total} | {c['caught']} | {c['missed']} | {c['unviable']} "
              f"| {c['timeout']} | {seconds / 60:.0f} |")
        details.append((name, missed, catchers))
    if show_missed:
        for name, missed, catchers in details:
            top = sorted(catchers.items(), key=lambda kv: -kv[1])[:5]
            print(f"\n{name}: caught most often by " + ", ".join(f"{t} ({n})" for t, n in top))
            for kind, mutant in missed:
                print(f"  {kind.upper()}: {mutant}")


if __name__ == "__main__":
    main()
