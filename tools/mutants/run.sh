#!/bin/bash
# Mutation testing of the numeric core (tests/MUTANTS.md), one cargo-mutants call per file.
#
#   tools/mutants/run.sh OUT_ROOT [FILE...]      # default: every file of the numeric core
#
# Run it in a separate git worktree: --in-place plants each bug in the checked-out tree. Point
# CARGO_TARGET_DIR at a copy of a release target dir: dependencies keep their release build
# (same settings, so nothing is rebuilt) while this crate is built incrementally at opt-level 0,
# which cuts one build from ~3 minutes to ~10 seconds on 2 cores. Not opt-level 1: incremental
# builds at opt-level >= 1 failed to link now and then here ("undefined hidden symbol
# anon.*.llvm.*"), which cargo-mutants counts as an unviable mutant; without incremental, one
# opt-level 1 build takes ~95 s. Tests that train for minutes at opt-level 0 are left out.
# Summarise with tools/mutants/summarize.py OUT_ROOT --missed; MUTANTS_RE=<regex> keeps only the
# mutants whose names match (tools/mutants/recheck.py uses it to retry the missed ones).
set -u
out=${1:?usage: run.sh OUT_ROOT [FILE...]}
shift
mkdir -p "$out"
export CARGO_PROFILE_RELEASE_INCREMENTAL=true
fast=(--config=profile.release.package.mixbench.opt-level=0)

# The tests that can see each file: its unit tests plus the integration tests that drive it.
# The canary, learning and suite_errors (minutes at opt-level 0) are left out.
tests_for() {
  case $1 in
    src/data/*) echo "--lib --test=sampling --test=data_readers --test=engine";;
    src/regularizer/*) echo "--lib --test=sampling --test=engine --test=reference_fixtures";;
    # adam.rs: reference_fixtures never builds an Adam; adam_fixture is its PyTorch check.
    src/train/adam.rs) echo "--lib --test=adam_fixture --test=engine";;
    src/train/*|src/scoring/loss.rs) echo "--lib --test=adam_fixture --test=reference_fixtures --test=engine";;
    src/scoring/metrics.rs) echo "--lib --test=evaluation --test=evaluator_reference --test=engine";;
    # reference_fixtures (~34 s at opt-level 0) drives models, losses, optimizers and mixing
    # only: it cannot see results/ or eval/, so it is not run for them (since 2026-12-03, 5th).
    src/results/*) echo "--lib --test=cli --test=evaluation";;
    src/eval/*) echo "--lib --test=evaluation --test=evaluator_reference";;
    *) echo "--lib";;
  esac
}

# Name filters for the test binaries (`cargo test ... -- WORD...`): only the tests whose names hold
# one of the words run, so one mutant costs ~10 s instead of ~20. A filter can only hide a
# catch, never invent one: a mutant missed under a filter is retried without it
# (`MUTANTS_FILTER= tools/mutants/recheck.py ...`) before it counts as missed. Set MUTANTS_FILTER
# to override ("" runs every test of the set).
filter_for() {
  case $1 in
    src/eval/singular_values.rs) echo "singular";;
    src/eval/affine.rs) echo "affine deform zoom warp rotat shear";;
    # fgsm_steps_use_each_pixels_channel... also checks a PGD step and its random start.
    src/eval/pgd.rs) echo "pgd fgsm";;
    src/train/adam.rs) echo "adam";;
    src/eval/fgsm.rs) echo "fgsm";;
    *) echo "";;
  esac
}

if [ $# -eq 0 ]; then
  # Smallest first, so that whole files are finished early in a session.
  set -- $(for f in src/eval/*.rs src/regularizer/*.rs src/results/{diff,aggregate,comparison,trend}.rs \
      src/scoring/{loss,metrics}.rs src/train/{schedule,sgd,adam}.rs src/data/{batch,subset}.rs; do
    echo "$(cargo mutants --list -f "$f" 2>/dev/null | wc -l) $f"; done | sort -n | cut -d' ' -f2)
fi

declare -A checked
for f in "$@"; do
  tests=$(tests_for "$f")
  words=${MUTANTS_FILTER-$(filter_for "$f")}
  [ -n "$words" ] && tests="$tests -- $words"
  if [ -z "${checked[$tests]:-}" ]; then
    # A test command that fails without any mutation would count every mutant as caught.
    cargo test --release "${fast[@]}" $tests >"$out/baseline.log" 2>&1 \
      || { echo "unmutated tree fails: cargo test $tests (see $out/baseline.log)" >&2; exit 1; }
    checked[$tests]=1
  fi
  name=$(echo "$f" | tr / _)
  echo "$(date +%T) $f"
  cargo mutants --in-place --profile release --baseline skip --timeout 150 --build-timeout 400 \
    $(for a in "${fast[@]}" $tests; do printf -- '-C=%s ' "$a"; done) \
    ${MUTANTS_RE:+--re "$MUTANTS_RE"} -f "$f" -o "$out/$name" >"$out/$name.log" 2>&1
done
