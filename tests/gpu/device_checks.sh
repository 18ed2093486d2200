#!/usr/bin/env bash
# One-session device check, call 2 of 2 (carry: .gpu2), right after device_start.sh.
# Joins the wheel's demo model, writes the F32 target and Q8_0 draft from it, waits for the background CUDA build, then
# with every layer on the GPU: SpecChat against llama-speculative-simple and the engine's
# own overhead per step, greedy divergence with the target's top-two gaps, and the engine
# test suite (tiny and demo-pair models). Each step's time is capped by what is left of
# the call, most important first; results land in $OUT as they are made, so a call that
# runs out of time still returns what it measured.
# DEVICE_BASELINE=DIR (a folder holding an older core/, e.g. from `git archive`) measures
# that engine with the same parity bench right after the current one, for an A/B on one card.
# Dry run on a CPU build: DEVICE_BIN=/path/build/bin DEVICE_PYLIB=/path/llama_cpp_python-X
# DEVICE_N=32 DEVICE_REPEATS=1 DEVICE_PROMPTS=1 OUT=/tmp/out bash tests/gpu/device_checks.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/summary.log") 2>&1
N=${DEVICE_N:-256}
REPEATS=${DEVICE_REPEATS:-3}
PROMPTS=${DEVICE_PROMPTS:-6}  # 0 skips the divergence count
DRAFT_MAXES=${DEVICE_DRAFT_MAXES:-8 16}
TESTS=${DEVICE_TESTS:-tests/test_engine_behaviour.py tests/test_engine_exactness.py \
    tests/test_engine_lifecycle.py tests/test_engine_sampling.py tests/test_draft_length.py \
    tests/test_model_files.py tests/test_model_drafter.py tests/test_logit_views.py}
BUDGET=${DEVICE_BUDGET_S:-585}
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
capped() { local cap=$1; shift; local l; l=$(left); [ "$l" -gt 15 ] || { echo "skipped (no time): $*"; return 124; }
    timeout $(( cap < l ? cap : l - 5 )) "$@"; }
DEMO=/tmp/demo
# The wheel's Q4_1 model travels in two parts; both demo models are written from it.
SOURCE=$DEMO/SmolLM2-135M-Instruct.Q4_1.gguf
DRAFT=$DEMO/SmolLM2-135M-Instruct.Q8_0.gguf
TARGET=$DEMO/SmolLM2-135M-Instruct.F32.gguf
if [ ! -f "$SOURCE" ]; then
    [ -f $DEMO/draft.part-a ] || { echo "call 1 did not run on this machine (not warm): start again"; exit 2; }
    cat $DEMO/draft.part-a .gpu2/draft.part-b > "$SOURCE"
    (cd $DEMO && sha256sum -c "$OLDPWD/.gpu2/draft.sha256") || exit 1
fi
export SPECCHAT_HOME=/tmp/specchat-home SPECCHAT_TEST_MODELS=$DEMO
# core.demo_models reaches core.hub, whose HTTP, keyring and server packages the device
# lacks and the checks never call: stand-ins keep the imports working.
for m in httpx2 keyring starlette; do
    python3 -c "import $m" 2>/dev/null && continue
    mkdir -p /tmp/site/$m
    for f in __init__ errors; do
        printf 'def __getattr__(name):\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (Exception,), {})\n' > /tmp/site/$m/$f.py
    done
done
stamp "waiting for the build"
if [ -z "${DEVICE_BIN:-}" ]; then
    while [ ! -f /tmp/llama-build.rc ] && [ "$(left)" -gt 150 ]; do
        sleep 10; grep -o '\[[0-9]*/[0-9]*\]' /tmp/llama/build.log 2>/dev/null | tail -1
    done
    [ "$(cat /tmp/llama-build.rc 2>/dev/null)" = 0 ] || { cat /tmp/llama-build.out; stamp "build not done"; exit 1; }
    cat /tmp/llama-build.out
fi
BIN=${DEVICE_BIN:-/tmp/llama/build/bin}
export PYTHONPATH=${DEVICE_PYLIB:-$(echo /tmp/llama/llama_cpp_python-*)}:/tmp/site:$PWD
python3 -c "import llama_cpp; print('gpu offload:', llama_cpp.llama_supports_gpu_offload())"
# Target (F32) and draft (Q8_0) are written by llama.cpp's own quantize call, so after the build.
python3 -c "
from pathlib import Path; from core.demo_models import write_demo_pair
write_demo_pair(Path('$SOURCE'), Path('$DEMO'))" || exit 1
stamp "demo pair ready"

PYTHONPATH_HERE=$PYTHONPATH
for dmax in $DRAFT_MAXES; do
    stamp "SpecChat vs llama-speculative-simple, greedy, draft-max $dmax, p-min 0, n=$N, all layers on the GPU"
    capped 120 python3 tests/benchmarks/llama_cpp_parity.py "$TARGET" "$DRAFT" --bin "$BIN" -ngl 99 \
        -n "$N" --draft-max $dmax --repeats "$REPEATS" --json "$OUT/parity_$dmax.json" 2>"$OUT/stderr_$dmax.log"
    if [ -n "${DEVICE_BASELINE:-}" ]; then
        stamp "the same with the baseline engine in $DEVICE_BASELINE"
        PYTHONPATH=$DEVICE_BASELINE:$PYTHONPATH_HERE capped 120 python3 tests/benchmarks/llama_cpp_parity.py \
            "$TARGET" "$DRAFT" --bin "$BIN" -ngl 99 -n "$N" --draft-max $dmax --repeats "$REPEATS" \
            --json "$OUT/parity_base_$dmax.json" 2>>"$OUT/stderr_$dmax.log"
    fi
    stamp "where the engine's time goes between decodes, draft-max $dmax"
    capped 60 python3 tests/benchmarks/engine_overhead_profile.py "$TARGET" "$DRAFT" -ngl 99 -n "$N" \
        --draft-max $dmax 2>>"$OUT/stderr_$dmax.log"
done
stamp "the same, the guard choosing draft lengths (--draft-max 16 auto)"
capped 60 python3 tests/benchmarks/engine_overhead_profile.py "$TARGET" "$DRAFT" -ngl 99 -n "$N" \
    --draft-max 16 --adaptive 2>>"$OUT/stderr_adaptive.log"

if [ "$PROMPTS" -gt 0 ]; then
    stamp "greedy divergence: $PROMPTS prompts x draft-max 4/8/16, n=$N"
    capped 150 python3 tests/benchmarks/greedy_divergence.py "$TARGET" "$DRAFT" -ngl 99 -n "$N" \
        --prompts "$PROMPTS" --json "$OUT/divergence.json" 2>"$OUT/stderr_divergence.log"
    echo "divergence rc=$?"
fi

stamp "engine test suite (tiny and demo-pair models) on the GPU build"
TIMEOUT_FLAG=$(python3 -c "import pytest_timeout" 2>/dev/null && echo --timeout=90)
capped 400 python3 -m pytest -q -p no:cacheprovider -o addopts="" -W "ignore::pytest.PytestConfigWarning" \
    $TIMEOUT_FLAG -rfE $TESTS > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.log" | tail -15
stamp "done"
