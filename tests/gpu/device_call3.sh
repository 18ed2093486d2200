#!/usr/bin/env bash
# Device call 3: why tiny/demo models crash in print_info on the CUDA build (libstdc++ binding test).
set -u; export PYTHONUNBUFFERED=1; T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
mkdir -p /tmp/site; python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
bash tests/gpu/build_llama.sh .gpu/llama-cpp-python-src.tar.xz /tmp/llama cuda "$(nproc)" | tail -c 300
L=/tmp/llama/build/bin; export PYTHONPATH=$(echo /tmp/llama/llama_cpp_python-*):/tmp/site:$PWD
stamp "exported std:: symbols per lib"
for f in libggml-cuda.so libggml-base.so libggml.so libllama.so libggml-cpu.so; do echo "$f $(nm -D --defined-only $L/$f | c++filt | grep -c 'std::') $(nm -D --defined-only $L/$f | c++filt | grep -E '_M_insert|num_put|locale::' | head -2 | tr '\n' ' ')"; done
python3 -c "from pathlib import Path; from tests.support.tiny_gguf import write_tiny_model; write_tiny_model(Path('/tmp/tiny.gguf'))"
cat > /tmp/ld.py <<'PY'
import ctypes, importlib, sys
args = sys.argv[2:]
if "PRELOAD" in args:
    ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
for m in args:
    if m != "PRELOAD":
        importlib.import_module(m)
import llama_cpp
llama_cpp.llama_backend_init()
p = llama_cpp.llama_model_default_params(); p.n_gpu_layers = int(sys.argv[1][-2:]) if False else 99
m = llama_cpp.llama_model_load_from_file(b"/tmp/tiny.gguf", p)
print("LOADED", bool(m), flush=True)
PY
stamp "load cases"
for c in "" "numpy" "gguf" "yaml" "PRELOAD" "PRELOAD gguf"; do timeout 40 python3 /tmp/ld.py x $c > /tmp/o.log 2>&1; echo "tiny [$c] rc=$? $(grep -o 'LOADED.*' /tmp/o.log)"; done
LD_DEBUG=bindings timeout 40 python3 /tmp/ld.py x gguf 2>&1 | grep -E "_M_insert|num_put" | head -4 | cut -c1-220
stamp "engine suite with libstdc++ preloaded globally"
timeout 100 python3 -c "
import ctypes, sys; ctypes.CDLL('libstdc++.so.6', mode=ctypes.RTLD_GLOBAL)
import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-m', 'not demo_pair', '-o', 'addopts=', 'tests/test_engine_behaviour.py', 'tests/test_engine_exactness.py', 'tests/test_engine_lifecycle.py', 'tests/test_model_files.py']))" > /tmp/p.log 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|error|Fatal" /tmp/p.log | tail -4
stamp done
