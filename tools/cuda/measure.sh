#!/usr/bin/env bash
# The GPU measurements in README "On a GPU", in one pass, on a machine with an NVIDIA GPU:
#
#   tools/cuda/measure.sh BINARY OUTDIR [STEPS]
#
# BINARY is a `--features cuda` build (tools/cuda/build.sh). The CUDA 13 runtime libraries are
# taken from LD_LIBRARY_PATH, else from the NVIDIA wheels of the python3 on PATH (a PyTorch for
# CUDA 13 has them). Writes into OUTDIR: gpu.txt (nvidia-smi), smoke-*.log (table1 and table2
# smoke trained and evaluated on the GPU, compared with their CPU baselines), estimate-table1.md
# and .json (table1's paper profile timed at its real shapes), check.md (the real-shape check of
# every paper-scale profile), each with a .err log. Every step has its own time limit, so one
# that hangs leaves the rest; the script exits 0 once all ran, whatever they printed.
set -u
bin=${1:?usage: measure.sh BINARY OUTDIR [STEPS]}
out=${2:?usage: measure.sh BINARY OUTDIR [STEPS]}
steps=${3:-10}
mkdir -p "$out"
if ! ldd "$bin" | grep -q 'libcublas.so.13 => /'; then
  lib=$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))')
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
ldd "$bin" | grep -E 'cuda|cublas|curand|nvrtc' >>"$out/gpu.txt"
work=$(mktemp -d)
step() { # NAME SECONDS COMMAND...: runs one measurement with its limit, logs its time and status
  local name=$1 limit=$2 t0=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$out/$name" 2>"$out/$name.err"
  echo "$name: exit $? in $((SECONDS - t0)) s" | tee -a "$out/steps.txt"
}
for s in table1 table2; do
  step "smoke-$s.log" 90 "$bin" reproduce "$s" --profile smoke --device cuda \
    --results-dir "$work/results" --reports-dir "$work/reports"
done
step estimate-table1.json 200 "$bin" estimate table1 --profile paper --device cuda --steps "$steps" --format json
step check.md 170 "$bin" estimate all --profile paper,paper-code,paper-prerefactor --check --device cuda
exit 0
