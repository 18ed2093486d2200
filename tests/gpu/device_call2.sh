#!/usr/bin/env bash
# Device call 2 of 2, on the machine call 1 left warm. Carry: .gpu2 (draft part B, sha256).
# Joins the demo draft, writes the F32 target from it, then on the GPU (all layers offloaded):
# SpecChat vs llama-speculative-simple + engine overhead, the demo target's cost curve,
# greedy divergence with near-tie gaps, the demo-pair tests, and the bench table.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; LOG=/tmp/logs2; rm -rf "$LOG"; mkdir -p "$OUT" "$LOG"
# At most 8 files come back from $OUT: every log goes into one archive.
trap 'tar czf "$OUT/logs2.tgz" -C /tmp logs2' EXIT
# Dry run without a GPU: DEVICE_N=32 DEVICE_REPEATS=1 DEVICE_PROMPTS=1 (shorter, same steps)
N=${DEVICE_N:-256}
REPEATS=${DEVICE_REPEATS:-3}
PROMPTS=${DEVICE_PROMPTS:-6}
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
if [ ! -f /tmp/demo/draft.part-a ] || [ ! -x /tmp/llama/build/bin/llama-speculative-simple ]; then
    echo "call 1's build is not here: the machine was not warm. Run call 1 again, then this at once."
    exit 2
fi
DEMO=/tmp/demo
# The wheel's Q4_1 model travels in two parts; both demo models are written from it.
SOURCE=$DEMO/SmolLM2-135M-Instruct.Q4_1.gguf
DRAFT=$DEMO/SmolLM2-135M-Instruct.Q8_0.gguf
TARGET=$DEMO/SmolLM2-135M-Instruct.F32.gguf
cat $DEMO/draft.part-a .gpu2/draft.part-b > "$SOURCE"
(cd $DEMO && sha256sum -c "$OLDPWD/.gpu2/draft.sha256") || exit 1
export PYTHONPATH=$(echo /tmp/llama/llama_cpp_python-*):/tmp/site:$PWD
export SPECCHAT_HOME=/tmp/specchat-home SPECCHAT_TEST_MODELS=$DEMO
BIN=/tmp/llama/build/bin
python3 -c "
from pathlib import Path; from core.demo_models import write_demo_pair
write_demo_pair(Path('$SOURCE'), Path('$DEMO'))" 2>"$LOG/f32.log"

for dmax in 8 16; do
    stamp "a+b: SpecChat vs llama-speculative-simple, draft-max $dmax, p-min 0, n=$N"
    python3 tests/benchmarks/llama_cpp_parity.py "$TARGET" "$DRAFT" --bin $BIN -ngl 99 -n $N \
        --draft-max $dmax --repeats $REPEATS --json "$LOG/parity_$dmax.json" 2>>"$LOG/parity.log"
done
stamp "a: same, draft-max 16, p-min 0.75 (llama.cpp server's default)"
python3 tests/benchmarks/llama_cpp_parity.py "$TARGET" "$DRAFT" --bin $BIN -ngl 99 -n $N \
    --draft-max 16 --draft-p-min 0.75 --repeats $REPEATS 2>>"$LOG/parity.log"

stamp "c: verification cost curve, demo target (F32 135M), all layers on the GPU"
python3 tests/benchmarks/verify_cost_curve.py "$TARGET" -ngl 99 --repeats $(( REPEATS * 3 )) \
    --json "$LOG/curve_demo.json" 2>"$LOG/curve_demo.log"

stamp "e: greedy divergence, $PROMPTS prompts x draft-max 4/8/16, n=$N"
python3 tests/benchmarks/greedy_divergence.py "$TARGET" "$DRAFT" -ngl 99 -n $N \
    --prompts $PROMPTS --json "$LOG/divergence.json" 2>"$LOG/divergence.log"
echo "divergence rc=$?"

stamp "demo-pair tests on the GPU build"
timeout 180 python3 -m pytest -q -p no:cacheprovider -m demo_pair -o addopts="" \
    -W "ignore::pytest.PytestConfigWarning" $(python3 -c "import pytest_timeout" 2>/dev/null && echo --timeout=120) \
    tests/test_engine_exactness.py tests/test_engine_behaviour.py tests/test_engine_sampling.py \
    > "$LOG/pytest_demo.log" 2>&1
echo "pytest rc=$?"; tail -4 "$LOG/pytest_demo.log"

stamp "bench table (identical column = greedy speculative equals plain)"
[ "$N" -ge 256 ] && timeout 150 python3 tests/gpu/gpu_checks.py $DEMO > "$LOG/gpu_checks.log" 2>"$LOG/gpu_checks.err"
grep -vE "^\s*$" "$LOG/gpu_checks.log" | tail -22
stamp "call 2 done"
