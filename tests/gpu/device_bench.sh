#!/usr/bin/env bash
# Second device call, on the same warm machine: join the draft, build the F32 target,
# benchmark on the GPU (exactness is its "identical" column). Carry: .gpu2 (draft part B, sha256).
set -euo pipefail
export PYTHONUNBUFFERED=1
cat /tmp/demo/draft.part-a .gpu2/draft.part-b > /tmp/demo/SmolLM2-135M-Instruct.Q4_1.gguf
(cd /tmp/demo && sha256sum -c "$OLDPWD/.gpu2/draft.sha256")
export PYTHONPATH=/tmp/site:$PWD
python3 tests/gpu/gpu_checks.py /tmp/demo 2>"$OUT/stderr.log" | tee "$OUT/gpu_checks.log"
