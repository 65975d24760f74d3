#!/usr/bin/env bash
# Nightly regression run for cron or any CI: every smoke suite against its committed baseline,
# each run appended to the history, then the history's step detection per suite.
#
#   MIXBENCH_HISTORY  history folder (default: history)    MIXBENCH_OUT  reports/logs (default: nightly-out)
#
# Exit: the worst of `reproduce all` (1 regression, 2 error, 3 diverged, 4 not comparable, 5
# incomplete) and 1 when `mixbench history` finds a metric that moved beyond its tolerance and
# stayed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mixbench-target}"
HIST="${MIXBENCH_HISTORY:-history}"
OUT="${MIXBENCH_OUT:-nightly-out}"
mkdir -p "$OUT" "$HIST"
cargo build --release --quiet || exit 2
bin="$CARGO_TARGET_DIR/release/mixbench"
"$bin" --results-dir "$OUT/results" --reports-dir "$OUT/reports" \
  reproduce all --profile smoke --history "$HIST" > "$OUT/report.md" 2> "$OUT/reproduce.log"
code=$?
{
  echo "# mixbench nightly: reproduce all --profile smoke → exit $code"
  grep -A 6 "^## Verdict" "$OUT/report.md" || true
} > "$OUT/summary.md"
for suite in $("$bin" list 2>/dev/null | awk '/^[a-z0-9_]+ / {print $1}'); do
  "$bin" history "$suite" --profile smoke --history-dir "$HIST" > "$OUT/history-$suite.md" 2>> "$OUT/history.log"
  h=$?
  if [ "$h" = 1 ]; then
    echo "- history: a metric of \`$suite\` moved beyond its tolerance and stayed (see history-$suite.md)" >> "$OUT/summary.md"
    [ "$code" = 0 ] && code=1
  fi
done
cat "$OUT/summary.md"
exit "$code"
