"""Engine checks on a CUDA build of llama.cpp, run on a lent GPU machine.

Usage: python tests/gpu/gpu_checks.py FOLDER_WITH_THE_WHEELS_Q4_1_MODEL

Writes the demo pair (F32 target, Q8_0 draft) next to the wheel's Q4_1 model, then
runs the benchmark with every layer offloaded (and, for comparison, on the machine's
CPU cores). The benchmark prints the offloaded layer counts and, per mode, in how
many runs greedy speculative output equalled plain output. Prints numbers; not part
of pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.cli.bench import run_bench
from core.demo_models import DEMO_WHEEL_MEMBER, write_demo_pair
from core.engine.backend import gpu_offload_supported


def main() -> int:
    folder = Path(sys.argv[1])
    print(f"llama_supports_gpu_offload: {gpu_offload_supported()}")
    pair = write_demo_pair(folder / DEMO_WHEEL_MEMBER.rpartition("/")[2], folder)
    target, draft = pair.target, pair.draft
    common = ["-m", str(target), "-md", str(draft), "-n", "256", "-v"]
    print("\n== GPU (all layers offloaded)")
    draft_lengths = [
        "--draft-max",
        "3",
        "--draft-max",
        "4",
        "--draft-max",
        "8",
        "--draft-max",
        "16",
    ]
    run_bench([*common, "-ngl", "-1", "--repeats", "3", *draft_lengths])
    print("\n== CPU only on this machine, 16 threads")
    run_bench([*common, "-ngl", "0", "-t", "16", "--repeats", "1", "--draft-max", "8"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
