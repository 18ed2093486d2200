#!/usr/bin/env bash
# Device call 1 of 2 (GPU machine, no network). Carry: .gpu (see prepare_payload.sh).
# Builds llama.cpp with CUDA once (bindings + llama-speculative-simple + llama-batched-bench),
# probes the tiny test models, runs the engine test suite on the GPU build, and measures the
# verification cost curve of an 8B Llama-shaped random-weight model. Leaves the build and the
# draft's first part in /tmp for call 2, which must follow while the machine is warm.
# Compact numbers on stdout; logs in $OUT/logs1.tgz.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; LOG=/tmp/logs1; rm -rf "$LOG"; mkdir -p "$OUT" "$LOG"
# At most 8 files come back from $OUT: every log goes into one archive.
trap 'tar czf "$OUT/logs1.tgz" -C /tmp logs1' EXIT
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
# Dry run without a GPU: DEVICE_BACKEND=cpu DEVICE_CURVE_SHAPE=tiny DEVICE_REUSE_BUILD=1
BACKEND=${DEVICE_BACKEND:-cuda}
SHAPE=${DEVICE_CURVE_SHAPE:-8b}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p /tmp/site /tmp/demo
cp .gpu/draft.part-a /tmp/demo/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/*.whl
stamp "build"
[ "${DEVICE_REUSE_BUILD:-0}" = 1 ] && [ -x /tmp/llama/build/bin/llama-speculative-simple ] ||
bash tests/gpu/build_llama.sh .gpu/llama-cpp-python-src.tar.xz /tmp/llama "$BACKEND" "$(nproc)" || {
    cp /tmp/llama/*.log "$LOG/" 2>/dev/null; exit 1; }
cp /tmp/llama/*.log "$LOG/"
export PYTHONPATH=$(echo /tmp/llama/llama_cpp_python-*):/tmp/site:$PWD
export SPECCHAT_HOME=/tmp/specchat-home
python3 -c "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload(), 'rpc:', llama_cpp.llama_supports_rpc())"

stamp "tiny-model probe (print_info crash)"
timeout 120 python3 tests/gpu/tiny_model_probe.py 2>"$LOG/probe.log"
if ! timeout 60 python3 -X faulthandler tests/gpu/device_diag.py engine 0 > "$LOG/diag.log" 2>&1; then
    echo "engine load of a tiny model failed; native backtrace:"
    GDB=$(command -v cuda-gdb || command -v gdb)
    timeout 90 "$GDB" -batch -ex "set pagination off" -ex run -ex bt -ex "info sharedlibrary" \
        --args python3 tests/gpu/device_diag.py engine 0 > "$LOG/gdb.log" 2>&1
    grep -E "^#[0-9]+ " "$LOG/gdb.log" | head -25
fi

stamp "engine test suite on the GPU build (tiny models)"
timeout 200 python3 -m pytest -q -x -p no:cacheprovider -m "not demo_pair" -o addopts="" \
    -W "ignore::pytest.PytestConfigWarning" $(python3 -c "import pytest_timeout" 2>/dev/null && echo --timeout=120) \
    tests/test_engine_behaviour.py tests/test_engine_exactness.py tests/test_engine_lifecycle.py \
    tests/test_engine_sampling.py tests/test_draft_length.py tests/test_model_files.py \
    > "$LOG/pytest_tiny.log" 2>&1
echo "pytest rc=$?"; tail -4 "$LOG/pytest_tiny.log"

stamp "verification cost curve, $SHAPE Llama shape, random Q4_0 weights, all layers on the GPU"
python3 tests/benchmarks/verify_cost_curve.py --random-shape "$SHAPE" --random-path /tmp/random-8b.gguf \
    -ngl 99 --repeats 7 --json "$LOG/curve_8b.json" 2>"$LOG/curve_8b.log"
stamp "llama-batched-bench on the same model (prompt of k tokens = one batch of k)"
timeout 120 /tmp/llama/build/bin/llama-batched-bench -m /tmp/random-8b.gguf -ngl 99 -c 4096 \
    -b 512 -ub 512 -npp 1,2,4,8,9,16,17 -ntg 1 -npl 1 > "$LOG/batched_bench_8b.log" 2>&1
grep -E "^\|" "$LOG/batched_bench_8b.log" | cut -c1-60
rm -f /tmp/random-8b.gguf
stamp "call 1 done; run call 2 now, while the machine is warm"
