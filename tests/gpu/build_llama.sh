#!/usr/bin/env bash
# One CMake build of the llama.cpp vendored in llama-cpp-python's source gives both the
# shared libraries the Python bindings load and llama.cpp's own programs
# (llama-speculative-simple, llama-batched-bench, ggml-rpc-server), so every comparison runs
# the same kernels. The bindings are then used from the unpacked source: the built
# libraries are copied into its llama_cpp/lib, where llama_cpp and llama_cpp._ggml look.
#   bash tests/gpu/build_llama.sh SRC_TAR_XZ DEST [cuda|cpu] [JOBS]
# EXTRA_CMAKE_FLAGS adds CMake flags (-DGGML_CUDA_FA=OFF skips the FlashAttention kernels,
# most of a CUDA build's time, where a device call must leave time for the checks).
# Afterwards: PYTHONPATH=DEST/llama_cpp_python-0.3.36 and programs in DEST/build/bin.
set -euo pipefail
TARBALL=$1
DEST=$2
BACKEND=${3:-cuda}
JOBS=${4:-$(nproc)}
mkdir -p "$DEST"
rm -rf "$DEST"/llama_cpp_python-*
tar xJf "$TARBALL" -C "$DEST"
SRC=$(echo "$DEST"/llama_cpp_python-*)
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DGGML_RPC=ON
    -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF)
if [ "$BACKEND" = cuda ]; then
    FLAGS+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
fi
read -r -a EXTRA <<< "${EXTRA_CMAKE_FLAGS:-}"
FLAGS+=("${EXTRA[@]}")
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
start=$(date +%s)
cmake -S "$SRC/vendor/llama.cpp" -B "$DEST/build" "${GENERATOR[@]}" "${FLAGS[@]}" > "$DEST/configure.log" 2>&1 \
    || { tail -30 "$DEST/configure.log"; exit 1; }
cmake --build "$DEST/build" -j "$JOBS" \
    --target ${BUILD_TARGETS:-llama llama-speculative-simple llama-batched-bench ggml-rpc-server} > "$DEST/build.log" 2>&1 \
    || { grep -m5 -B2 -A8 "error" "$DEST/build.log"; tail -20 "$DEST/build.log"; exit 1; }
mkdir -p "$SRC/llama_cpp/lib"
cp -P "$DEST"/build/bin/lib*.so* "$SRC/llama_cpp/lib/"
echo "built llama.cpp ($BACKEND) in $(( $(date +%s) - start )) s: $(ls "$DEST/build/bin" | tr '\n' ' ')"
