#!/usr/bin/env bash
# Device call 1 of 2 (GPU machine, no network). Carry: .gpu (see prepare_payload.sh).
# Builds llama.cpp with CUDA once (bindings + llama-speculative-simple + llama-batched-bench),
# probes the tiny test models, runs the engine test suite on the GPU build, and measures the
# verification cost curve of an 8B Llama-shaped random-weight model. Leaves the build and the
# draft's first part in /tmp for call 2, which must follow while the machine is warm.
# Compact numbers on stdout; logs in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p /tmp/site /tmp/demo
cp .gpu/draft.part-a /tmp/demo/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/*.whl
stamp "build"
bash tests/gpu/build_llama.sh .gpu/llama-cpp-python-src.tar.xz /tmp/llama cuda 16 || {
    cp /tmp/llama/*.log "$OUT/" 2>/dev/null; exit 1; }
export PYTHONPATH=$(echo /tmp/llama/llama_cpp_python-*):/tmp/site:$PWD
export SPECCHAT_HOME=/tmp/specchat-home
python3 -c "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload(), 'rpc:', llama_cpp.llama_supports_rpc())"

stamp "tiny-model probe (print_info crash)"
timeout 120 python3 tests/gpu/tiny_model_probe.py 2>"$OUT/probe.log"
if ! timeout 60 python3 -X faulthandler tests/gpu/device_diag.py engine 0 > "$OUT/diag.log" 2>&1; then
    echo "engine load of a tiny model failed; native backtrace:"
    timeout 120 cuda-gdb -batch -ex "set pagination off" -ex run -ex bt -ex "info sharedlibrary" \
        --args python3 tests/gpu/device_diag.py engine 0 > "$OUT/gdb.log" 2>&1
    grep -E "^#[0-9]+ " "$OUT/gdb.log" | head -25
fi

stamp "engine test suite on the GPU build (tiny models)"
timeout 240 python3 -m pytest -q -x -p no:cacheprovider -m "not demo_pair" -o addopts="" \
    -W "ignore::pytest.PytestConfigWarning" --timeout 120 \
    tests/test_engine_behaviour.py tests/test_engine_exactness.py tests/test_engine_lifecycle.py \
    tests/test_engine_sampling.py tests/test_draft_length.py tests/test_model_files.py \
    > "$OUT/pytest_tiny.log" 2>&1
echo "pytest rc=$?"; tail -4 "$OUT/pytest_tiny.log"

stamp "verification cost curve, 8B Llama shape, random Q4_0 weights, all layers on the GPU"
python3 tests/benchmarks/verify_cost_curve.py --random-shape 8b --random-path /tmp/random-8b.gguf \
    -ngl 99 --repeats 7 --json "$OUT/curve_8b.json" 2>"$OUT/curve_8b.log"
stamp "llama-batched-bench on the same model (prompt of k tokens = one batch of k)"
timeout 120 /tmp/llama/build/bin/llama-batched-bench -m /tmp/random-8b.gguf -ngl 99 -c 4096 \
    -b 512 -ub 512 -npp 1,2,4,8,9,16,17 -ntg 1 -npl 1 > "$OUT/batched_bench_8b.log" 2>&1
grep -E "^\|" "$OUT/batched_bench_8b.log" | cut -c1-60
rm -f /tmp/random-8b.gguf
stamp "call 1 done; run call 2 now, while the machine is warm"
