#!/usr/bin/env bash
# First device call: build llama-cpp-python with CUDA into /tmp/site (/tmp survives
# on the warm machine for the second call), then probe model loading on the GPU.
# Carry: .gpu (trimmed sdist tar.xz, wheels of gguf/diskcache/platformdirs, draft part A).
set -uo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
mkdir -p /tmp/site /tmp/demo
cp .gpu/draft.part-a /tmp/demo/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/*.whl
rm -rf /tmp/llama_cpp_python-0.3.36 && tar xJf .gpu/llama-cpp-python-trimmed.tar.xz -C /tmp
export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL=16
start=$(date +%s)
if ! python3 -m pip install --no-build-isolation --no-deps --no-cache-dir --target /tmp/site \
    /tmp/llama_cpp_python-0.3.36 > "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"; exit 1
fi
echo "build took $(( $(date +%s) - start )) s"; ls /tmp/site/llama_cpp/lib
export PYTHONPATH=/tmp/site:$PWD
for args in "raw 0" "raw 999" "raw 999 noextra" "engine 0" "engine 999"; do
    echo "== $args"
    python3 -X faulthandler tests/gpu/device_diag.py $args > "$OUT/diag.log" 2>&1
    echo "rc=$?"; grep -v "^  File\|llama_graph_n_input\|tensor '\|create_tensor\|llama_model_loader: - " "$OUT/diag.log" | tail -6
done
