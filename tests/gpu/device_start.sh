#!/usr/bin/env bash
# One-session device check, call 1 of 2 (carry: .gpu). Starts the CUDA build of the
# vendored llama.cpp in the background (setsid: it outlives this call, and runs while
# call 2 carries the demo draft's second half over) and returns at once. Call 2,
# tests/gpu/device_checks.sh with carry .gpu2, must follow while the machine is warm.
set -uo pipefail
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
mkdir -p /tmp/site /tmp/demo /tmp/llama
cp .gpu/draft.part-a /tmp/demo/
cp .gpu/llama-cpp-python-src.tar.xz /tmp/llama-src.tar.xz
cp tests/gpu/build_llama.sh /tmp/build_llama.sh
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/*.whl
# FlashAttention kernels off: they are most of the build's minutes, and SpecChat and
# llama.cpp's own tools still run the same kernels as each other.
EXTRA_CMAKE_FLAGS="-DGGML_CUDA_FA=OFF" BUILD_TARGETS="llama llama-speculative-simple" \
    setsid bash -c 'bash /tmp/build_llama.sh /tmp/llama-src.tar.xz /tmp/llama "${DEVICE_BACKEND:-cuda}" "$(nproc)" \
        > /tmp/llama-build.out 2>&1; echo $? > /tmp/llama-build.rc' < /dev/null > /dev/null 2>&1 &
sleep 2
echo "build started in the background"
