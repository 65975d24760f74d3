#!/usr/bin/env python3
"""Re-run only the mutants a previous run missed, after tests were added.

Usage: recheck.py OUT_ROOT NEW_OUT_ROOT   (from the root of a mutation worktree, as run.sh)
Line numbers move when tests are added, so each missed mutant is matched by its file, function
and replacement (`--re`), not by its line. Prints the cargo-mutants commands it runs.
"""
import os
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from summarize import summarize  # noqa: E402


def escape(text):
    """Escapes the regex metacharacters only (Rust's regex refuses some of Python's escapes)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def main():
    old, new = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    run_sh = pathlib.Path(__file__).with_name("run.sh")
    files, patterns = [], set()
    for folder in sorted(p for p in old.iterdir() if (p / "mutants.out/outcomes.json").exists()):
        names, _, _, missed, _ = summarize(folder)
        if missed:
            files.extend(sorted(names))
        for _, name in missed:
            # "src/x.rs:22:22: replace > with >= in f" -> file, any line and column, same change
            file, rest = name.split(":", 1)
            patterns.add(escape(file) + r":\d+:\d+: " + escape(rest.split(": ", 1)[1]) + "$")
    if not files:
        print("nothing was missed")
        return
    regex = "|".join(sorted(patterns))
    print(f"MUTANTS_RE={regex!r} {run_sh} {new} {' '.join(files)}", flush=True)
    subprocess.run(["bash", str(run_sh), str(new), *files], check=True,
                   env={**os.environ, "MUTANTS_RE": regex})


if __name__ == "__main__":
    main()
