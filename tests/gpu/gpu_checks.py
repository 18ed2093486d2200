"""Engine checks on a CUDA build of llama.cpp, run on a lent GPU machine.

Usage: python tests/gpu/gpu_checks.py FOLDER_WITH_Q4_1_DRAFT

Builds the demo pair's F32 target next to the draft, checks that every layer is
offloaded, that greedy speculative output equals plain output on the GPU, and runs
the benchmark on the GPU (and, for comparison, on the machine's CPU cores).
Prints numbers; not part of the pytest run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.cli.bench import run_bench
from core.demo_models import DRAFT_FILE_NAME, TARGET_FILE_NAME, write_f32_copy
from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine.backend import gpu_offload_supported

PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "What is the capital of France? Answer in one sentence.",
    "Give me three tips for a good night's sleep.",
)


def check_exactness(target: Path, draft: Path) -> bool:
    greedy = SamplingSettings(temperature=0.0)
    all_equal = True
    with SpeculativeEngine(ModelConfig(target, n_ctx=2048), ModelConfig(draft)) as engine:
        print(f"gpu layers: target {engine.target.n_gpu_layers}, draft {engine.draft.n_gpu_layers}")  # type: ignore[union-attr]
        for text in PROMPTS:
            prompt = engine.tokenize_chat([ChatMessage("user", text)])
            plain = collect(
                engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=128,
                        sampling=greedy,
                        drafting=DraftSettings(source=DraftSource.NONE),
                    ),
                )
            ).token_ids
            for drafting in (
                DraftSettings(n_max=3),
                DraftSettings(n_max=8),
                DraftSettings(source=DraftSource.NGRAM, n_max=8),
            ):
                result = collect(
                    engine.generate(
                        prompt,
                        GenerationSettings(n_predict=128, sampling=greedy, drafting=drafting),
                    )
                )
                same = result.token_ids == plain
                all_equal &= same
                print(
                    f"exactness {text[:30]!r:34} {drafting.source.value:6} max={drafting.n_max:<3}"
                    f" identical={same} acceptance={result.stats.acceptance:.3f}"
                )
    return all_equal


def main() -> int:
    folder = Path(sys.argv[1])
    draft = folder / DRAFT_FILE_NAME
    target = folder / TARGET_FILE_NAME
    print(f"llama_supports_gpu_offload: {gpu_offload_supported()}")
    if not target.exists():
        write_f32_copy(draft, target)
    equal = check_exactness(target, draft)
    print(f"greedy speculative == plain on GPU for every prompt and setting: {equal}")
    common = ["-m", str(target), "-md", str(draft), "-n", "256"]
    print("\n== GPU (all layers offloaded)")
    run_bench(
        [
            *common,
            "-ngl",
            "-1",
            "--repeats",
            "3",
            "--draft-max",
            "4",
            "--draft-max",
            "8",
            "--draft-max",
            "16",
        ]
    )
    print("\n== CPU only on this machine, 16 threads")
    run_bench([*common, "-ngl", "0", "-t", "16", "--repeats", "1", "--draft-max", "8"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
