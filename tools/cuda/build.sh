#!/usr/bin/env bash
# Builds `mixbench --features cuda` on any Linux machine, GPU or not: the CUDA toolkit comes
# from NVIDIA's PyPI wheels (all of one release), the driver's libcuda.so from a link stub (the
# real one is found at run time). See ../../README.md "GPU" and
# ../../../shared/reference/cuda-build.md for why each step is there.
#
#   tools/cuda/build.sh            # → target/release/mixbench (CUDA-enabled) + tools/cuda/runtime-libs.txt
#
# Environment:
#   MIXBENCH_CUDA_HOME   where the toolkit venv and link libraries live (default ~/.cache/mixbench-cuda)
#   CUDA_COMPUTE_CAP     GPU architecture for candle's PTX (default 90: H100/H200)
#   CUDA_RELEASE         13.0 (default; PTX is JIT-compiled by the driver, so the toolkit must not
#                        be newer than the GPU machine's driver: driver 580 = CUDA 13.0)
set -euo pipefail
cd "$(dirname "$0")/../.."
HOME_DIR="${MIXBENCH_CUDA_HOME:-$HOME/.cache/mixbench-cuda}"
RELEASE="${CUDA_RELEASE:-13.0}"
case "$RELEASE" in
  13.0) PINS=("nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-cuda-runtime==13.0.96"
              "nvidia-nvvm==13.0.88" "nvidia-cuda-cccl==13.0.85" "nvidia-cuda-nvrtc==13.0.88"
              "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.0.35") ;;
  *) echo "tools/cuda/build.sh: CUDA_RELEASE=$RELEASE has no pinned wheel set; add one here" >&2; exit 2 ;;
esac
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

if [ ! -x "$HOME_DIR/venv/bin/python" ] || [ "$(cat "$HOME_DIR/pins" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "== installing the CUDA $RELEASE toolkit wheels into $HOME_DIR/venv"
  rm -rf "$HOME_DIR/venv"
  python3 -m venv "$HOME_DIR/venv"
  "$HOME_DIR/venv/bin/pip" install --quiet --no-cache-dir "${PINS[@]}"
  echo "${PINS[*]}" > "$HOME_DIR/pins"
fi
C="$("$HOME_DIR/venv/bin/python" -c 'import nvidia,os;print(os.path.join(nvidia.__path__[0],"cu13"))')"
LIB="$HOME_DIR/lib"
mkdir -p "$LIB"
for l in cudart:13 cublas:13 cublasLt:13 curand:10 nvrtc:13; do
  name="${l%%:*}"; so="${l##*:}"
  ln -sf "$C/lib/lib$name.so.$so" "$LIB/lib$name.so"
done
# libcuda.so belongs to the driver and is in no wheel: link against a stub with the driver's
# SONAME that exports every cu* symbol cudarc's sources name.
if [ ! -f "$LIB/libcuda.so" ]; then
  echo "== making the libcuda.so link stub"
  cargo fetch --quiet
  cudarc="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'cudarc-*' | sort | tail -n 1)"
  if [ -z "$cudarc" ]; then
    echo "tools/cuda/build.sh: cudarc's sources are not in the cargo registry after cargo fetch" >&2
    exit 2
  fi
  { grep -rhoE '\bcu[A-Z][A-Za-z0-9_]*\b' "$cudarc/src" --include='*.rs' || true; } | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$LIB/stub.c"
  if [ ! -s "$LIB/stub.c" ]; then
    echo "tools/cuda/build.sh: found no cu* symbols in $cudarc" >&2
    exit 2
  fi
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LIB/libcuda.so" "$LIB/stub.c"
fi
echo "== cargo build --release --features cuda (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
PATH="$C/bin:$PATH" CUDA_ROOT="$C" CUDA_PATH="$C" LIBRARY_PATH="$LIB" \
  cargo build --release --features cuda "$@"
out="${CARGO_TARGET_DIR:-target}/release/mixbench"
echo "== built $out; it needs at run time (from the driver and from NVIDIA's CUDA $RELEASE wheels):"
echo "   libcuda.so.1 (driver), libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13"
echo "   e.g. pip install ${PINS[*]:2:1} ${PINS[*]:5:3} and LD_LIBRARY_PATH=<venv>/lib/python3*/site-packages/nvidia/cu13/lib"
