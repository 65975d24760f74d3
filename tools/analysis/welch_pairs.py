"""Two-sided Welch t-tests between experiments of one suite profile, from stored records: the
numbers behind the README's verdicts on the cpu reports.

    python3 tools/analysis/welch_pairs.py results/table8/cpu clean.top1_acc task-c-input-mixup task-c-none [A B ...]

Prints per pair: per-seed values, mean ± sample std of each side, t and the two-sided p
(scipy.stats.ttest_ind(a, b, equal_var=False)). Needs scipy.
"""

import glob
import json
import os
import sys

from scipy import stats


def values(records, experiment, metric):
    out = {}
    for path in glob.glob(os.path.join(records, f"{experiment}-s*.json")):
        with open(path) as f:
            r = json.load(f)
        if r.get("experiment") == experiment and metric in r.get("metrics", {}):
            out[r["seed"]] = r["metrics"][metric]
    if not out:
        sys.exit(f"{records}: no record of `{experiment}` has `{metric}`")
    return [out[s] for s in sorted(out)]


def main():
    if len(sys.argv) < 5 or (len(sys.argv) - 3) % 2:
        sys.exit(__doc__)
    records, metric, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
    for a, b in zip(pairs[::2], pairs[1::2]):
        x, y = values(records, a, metric), values(records, b, metric)
        r = stats.ttest_ind(x, y, equal_var=False)
        mean = lambda v: sum(v) / len(v)
        std = lambda v: stats.tstd(v) if len(v) > 1 else 0.0
        print(
            f"{metric}: {a} {mean(x):.3f} ± {std(x):.3f} {[round(v, 3) for v in x]} vs "
            f"{b} {mean(y):.3f} ± {std(y):.3f} {[round(v, 3) for v in y]}: t = {r.statistic:.2f}, p = {r.pvalue:.2g}"
        )


if __name__ == "__main__":
    main()
