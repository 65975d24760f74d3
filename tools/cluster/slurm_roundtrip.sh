#!/usr/bin/env bash
# The cluster path on a real Slurm: a single-node cluster (Debian's slurm-wlm and munge, as in
# the verified recipe the project keeps) runs the array script `mixbench plan --emit slurm`
# writes, and its results must equal a single-process run's, bit for bit.
#
#   tools/cluster/slurm_roundtrip.sh MIXBENCH_BINARY REFERENCE_RESULTS_DIR
#
# REFERENCE_RESULTS_DIR holds a single-process `reproduce table1 --profile smoke` (CI's smoke
# run). Needs root (installs the packages when missing, starts munged, slurmctld and slurmd).
# Checks, in order:
#   1. table1 smoke as a 3-task array into one shared folder: every task exits 0, `report`
#      exits 0, and every record's metrics equal the single-process run's, bit for bit;
#   2. a finished task requeued (`scontrol requeue`) reruns and trains nothing;
#   3. tools/cluster/slurm-resume.yaml as a 1-task array, requeued while a cell is training
#      (a checkpoint exists): the rerun resumes from the checkpoint, and its records equal a
#      single-process run's.
# Every daemon this script started is stopped by pid at exit; its files live in a temp folder,
# except the slurm config it writes to /etc/slurm/slurm.conf when none is there.
set -euo pipefail
bin=$(realpath "${1:?usage: slurm_roundtrip.sh MIXBENCH_BINARY REFERENCE_RESULTS_DIR}")
ref=$(realpath "${2:?usage: slurm_roundtrip.sh MIXBENCH_BINARY REFERENCE_RESULTS_DIR}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/mixbench-slurm.XXXXXX)
started=()
jobs=()

stop() {
  for j in "${jobs[@]}"; do scancel "$j" 2>/dev/null || true; done
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap stop EXIT

say() { echo "== slurm [$(date +%T)]: $*"; }
fail() { echo "slurm round trip FAILED: $*" >&2; for f in "$work"/*.out; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
conf="$work/slurm.conf"
mkdir -p "$work/spool/ctld" "$work/spool/d" "$work/log" /run/munge
cat > "$conf" <<EOF
ClusterName=mixbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/spool/ctld
SlurmdSpoolDir=$work/spool/d
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$conf"

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  chown munge:munge /run/munge
  su -s /bin/sh munge -c munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  started+=("$(pgrep -x -n munged)")
fi
munge -n | unmunge | grep -q "STATUS:.*Success" || fail "munge does not authenticate"
slurmctld -D -f "$conf" > "$work/log/slurmctld.stdout" 2>&1 &
started+=($!)
slurmd -D -f "$conf" > "$work/log/slurmd.stdout" 2>&1 &
started+=($!)
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o %t | grep -q idle || fail "slurmd did not come up: $(tail -3 "$work/log/slurmd.log")"
say "cluster up: $(sinfo -h)"

export PATH="$(dirname "$bin"):$PATH"
[ "$(command -v mixbench)" = "$bin" ] || fail "the binary must be named mixbench (got $bin)"

# Every record under $1 and $2 (one profile's folder each): the same cells ($3 of them) with
# the same training hash and bit-identical metrics.
same_metrics() {
  python3 - "$1" "$2" "$3" <<'PY' || fail "records in $2 differ from $1"
import json, os, sys
a, b, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sorted(f for f in os.listdir(a) if f.endswith(".json"))
assert names == sorted(f for f in os.listdir(b) if f.endswith(".json")), "different cells"
assert len(names) == n, names
for f in names:
    ra, rb = (json.load(open(os.path.join(d, f))) for d in (a, b))
    assert ra["training_hash"] == rb["training_hash"], f
    assert ra["metrics"] == rb["metrics"], (f, ra["metrics"], rb["metrics"])
PY
}

# Submits an array script; prints the job id.
submit() { sbatch --parsable --chdir="$repo" --open-mode=append --output="$work/%x-%A_%a.out" "$@"; }
# Waits until job $1 has nothing pending or running.
wait_job() {
  local deadline=$((SECONDS + ${2:-900}))
  while [ -n "$(squeue -h -j "$1" 2>/dev/null)" ]; do
    [ $SECONDS -lt $deadline ] || fail "job $1 still running after ${2:-900} s"
    sleep 1
  done
}
# Requeues array task $1 (job_task) and lets it start at once (Slurm makes a requeued job
# wait two minutes before it is eligible again).
requeue() {
  scontrol requeue "$1"
  # A running task is killed first; only a pending one takes a new start time.
  for _ in $(seq 300); do
    [ "$(squeue -h -j "$1" -o %T 2>/dev/null)" = PENDING ] && break
    sleep 0.1
  done
  # slurmd revokes a killed job's credential with a timestamp in whole seconds and refuses
  # any launch whose credential is not newer ("Job credential revoked", exit 1:0, nothing
  # run): a relaunch within the kill's second fails. Let that second pass first.
  sleep 2
  scontrol update JobId="$1" StartTime=now
}
# Exit code of array task $1 (job_task), from scontrol.
task_exit() { scontrol show job "$1" | tr ' ' '\n' | sed -n 's/^ExitCode=//p' | head -1; }

# 1. table1 smoke as three tasks sharing one results folder.
mixbench plan table1 --profile smoke --shards 3 --emit slurm --gpus 0 \
  --task-results-dir "$work/results" --task-data-dir "$work/data" > "$work/table1.sbatch"
job=$(submit "$work/table1.sbatch"); jobs+=("$job")
say "submitted table1 smoke as job $job (3 tasks)"
wait_job "$job"
for t in 0 1 2; do
  [ "$(task_exit "${job}_$t")" = "0:0" ] || fail "task ${job}_$t exited $(task_exit "${job}_$t")"
done
grep -h "all 18 cells have a result in $work/results" "$work"/*.out > /dev/null \
  || fail "the last task was not told that every cell has a result"
mixbench --results-dir "$work/results" --reports-dir "$work/reports" report table1 --profile smoke > "$work/report.md" \
  || fail "report over the array's results exited $?"
same_metrics "$ref/table1/smoke" "$work/results/table1/smoke" 18
say "3 tasks, report 0, all 18 records' metrics equal the single-process run"

# 2. A finished task requeued reruns and trains nothing.
requeue "${job}_1"
wait_job "$job"
[ "$(task_exit "${job}_1")" = "0:0" ] || fail "requeued task ${job}_1 exited $(task_exit "${job}_1")"
out1=$(ls "$work"/mixbench-table1-smoke-"${job}"_1.out)
[ "$(grep -c "^table1 shard 1/3: trained" "$out1")" = 2 ] || fail "task 1 did not run twice"
grep "^table1 shard 1/3: trained" "$out1" | tail -1 | grep -q "trained 0 model(s)" \
  || fail "the requeued finished task trained again: $(grep "shard 1/3" "$out1")"
say "requeued finished task reran and trained nothing"

# 3. A task requeued while it trains resumes from its checkpoint.
mkdir -p "$work/suites"
cp "$repo/tools/cluster/slurm-resume.yaml" "$work/suites/slurmresume.yaml"
mixbench --suites-dir "$work/suites" plan slurmresume --profile smoke --shards 1 --emit slurm --gpus 0 \
  --task-results-dir "$work/resume" --task-data-dir "$work/data" \
  | sed "s|^mixbench |mixbench --suites-dir $work/suites |" > "$work/resume.sbatch"
job=$(submit "$work/resume.sbatch"); jobs+=("$job")
deadline=$((SECONDS + 300))
until compgen -G "$work/resume/models/*/s*/checkpoints/epoch-*" > /dev/null; do
  [ $SECONDS -lt $deadline ] || fail "no checkpoint appeared"
  sleep 0.2
done
requeue "${job}_0"
say "requeued job ${job}_0 while it trained ($(ls -d "$work"/resume/models/*/s*/checkpoints/epoch-* | head -1 | xargs basename))"
wait_job "$job"
[ "$(task_exit "${job}_0")" = "0:0" ] || fail "requeued task ${job}_0 exited $(task_exit "${job}_0")"
grep -q "(resumed after epoch" "$work"/mixbench-slurmresume-smoke-"${job}"_0.out \
  || fail "the requeued task did not resume from a checkpoint"
mixbench --suites-dir "$work/suites" --results-dir "$work/single" --reports-dir "$work/reports" \
  reproduce slurmresume --profile smoke > /dev/null 2>&1 || fail "single-process slurmresume run failed"
same_metrics "$work/single/slurmresume/smoke" "$work/resume/slurmresume/smoke" 3
say "requeued running task resumed from its checkpoint; records equal a single-process run"
say "stopping the daemons this script started (pids ${started[*]})"
