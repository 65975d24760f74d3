#!/usr/bin/env bash
# Times the CPU train step of two code states side by side on this machine: the criterion bench
# `train_step` built at git revision BASE (default HEAD~1) and in the working tree, run
# alternately ROUNDS times (default 3) so that drift of the machine hits both alike.
#
#   bash tools/perf/ab_commits.sh [BASE] [FILTER] [ROUNDS]
#
# FILTER is criterion's bench filter (default: the width-0.125 PreActResNet18 steps). Prints
# criterion's [low median high] per run; name the CPU (`lscpu | grep 'Model name'`) next to any
# figure you quote.
set -euo pipefail
cd "$(dirname "$0")/../.."
base="${1:-HEAD~1}"
filter="${2:-preactresnet18_w0.125_b64}"
rounds="${3:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mixbench-target}"
wt="$(mktemp -d)"
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$wt" "$base"
bin_of() {
  (cd "$1" && cargo bench --bench train_step --no-run --message-format=json 2>/dev/null) |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "train_step" and m.get("executable"):
        print(m["executable"])' | tail -1
}
cp "$(bin_of "$wt")" "$wt/ab-base"
b="$(bin_of .)"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); threads: ${RAYON_NUM_THREADS:-$(nproc)}"
for r in $(seq "$rounds"); do
  for v in "base ($base):$wt/ab-base" "working tree:$b"; do
    echo "== round $r, ${v%%:*}"
    "${v#*:}" --bench "$filter" 2>&1 | grep -E "^train_step/|time:" | paste - - | sed 's/  */ /g'
  done
done
