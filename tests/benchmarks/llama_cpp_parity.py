"""SpecChat's speculative decoding against llama.cpp's own ``llama-speculative-simple``.

Same models, prompt, greedy sampling, draft-max/min/p-min, token count, threads and
offloaded layers; runs alternate (llama.cpp, SpecChat, llama.cpp, ...) so a slow
moment of the machine hurts both. Prints decode speed and acceptance of each, and
the engine's own overhead two ways:

* its work between decodes: an extra run with a timer around ``llama_decode`` that
  waits for the device before it stops the clock (GPU decodes return before the
  work is done); the wall time minus the decodes is all of the engine's own work,
  as if none of it overlapped a decode;
* the overhead: an answer's wall time beyond the same decodes replayed back to
  back right after it (``decode_replay.py``; the median over ``--pairs`` such
  pairs): what the engine's work costs the user. Work done
  while the device decodes (the draft's softmax of the token just chosen, the
  report of a step while the next draft catches up) costs nothing there.

Every SpecChat answer here starts from empty caches, so the replay starts where
the recorded answer did.

    python tests/benchmarks/llama_cpp_parity.py TARGET DRAFT --bin build/bin \
        [-ngl 99] [-n 256] [--draft-max 16] [--draft-min 0] [--draft-p-min 0.75]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from core.engine import (
    DraftSettings,
    GenerationSettings,
    GenerationStats,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine.config import default_threads

# Appended, not prepended: a PYTHONPATH entry holding another core/ (an A/B
# against an older engine) must win over this checkout's.
sys.path.append(str(Path(__file__).resolve().parents[2]))
from tests.benchmarks.decode_replay import recording, replay_seconds

PROMPT = "Write a short story about a robot who learns to paint. Once upon a time"
_DECODED = re.compile(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds, speed:\s+([\d.]+) t/s")
_ACCEPT = re.compile(r"accept\s+=\s+([\d.]+)%")


@dataclass
class Run:
    tokens: int
    tokens_per_second: float
    acceptance: float
    wall_ms: float = 0.0


def run_llama_cpp(binary: Path, args: argparse.Namespace, threads: int) -> Run:
    command = [
        str(binary),
        *("-m", str(args.target), "-md", str(args.draft), "-p", args.prompt),
        *("-n", str(args.n_predict), "-c", "2048", "--temp", "0", "--seed", "1"),
        *("--spec-draft-n-max", str(args.draft_max), "--spec-draft-n-min", str(args.draft_min)),
        *("--spec-type", "draft-simple", "--spec-draft-p-min", str(args.draft_p_min)),
        *("-ngl", str(args.gpu_layers), "-ngld", str(args.gpu_layers)),
        *("-t", str(threads), "--no-repack"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    decoded = _DECODED.search(output)
    accept = _ACCEPT.search(output)
    if done.returncode != 0 or not decoded or not accept:
        tail = "\n".join(output.splitlines()[-15:])
        raise RuntimeError(f"{binary.name} failed (exit {done.returncode}):\n{tail}")
    return Run(int(decoded[1]), float(decoded[3]), float(accept[1]) / 100)


def open_pair(target: Path, draft: Path, gpu_layers: int, threads: int) -> SpeculativeEngine:
    """The pair as both GPU benchmarks load it (a 2048-token context)."""
    return SpeculativeEngine(
        ModelConfig(target, n_gpu_layers=gpu_layers, n_ctx=2048, n_threads=threads),
        ModelConfig(draft, n_gpu_layers=gpu_layers, n_threads=threads),
    )


@contextmanager
def decode_timer() -> Iterator[list[float]]:
    """Sum the seconds spent in ``llama_decode`` (and in waiting for its result)."""
    spent = [0.0]
    original: Callable[..., int] = llama_cpp.llama_decode

    def timed(ctx: Any, batch: Any) -> int:
        started = time.perf_counter()
        status = original(ctx, batch)
        llama_cpp.llama_synchronize(ctx)
        spent[0] += time.perf_counter() - started
        return status

    # core.engine.model calls llama_cpp.llama_decode through the module, so this reaches it.
    llama_cpp.llama_decode = timed
    try:
        yield spent
    finally:
        llama_cpp.llama_decode = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("draft", type=Path)
    parser.add_argument("--bin", type=Path, required=True, help="folder of llama.cpp programs")
    parser.add_argument("-ngl", "--gpu-layers", type=int, default=99)
    parser.add_argument("-t", "--threads", type=int, default=None)
    parser.add_argument("-n", "--n-predict", type=int, default=256)
    parser.add_argument("--draft-max", type=int, default=16)
    parser.add_argument("--draft-min", type=int, default=0)
    parser.add_argument("--draft-p-min", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--pairs", type=int, default=11, help="answer-then-replay pairs for the overhead"
    )
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    threads = args.threads or default_threads()
    binary = args.bin / "llama-speculative-simple"
    engine = open_pair(args.target, args.draft, args.gpu_layers, threads)
    settings = GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(
            n_max=args.draft_max, n_min=args.draft_min, p_min=args.draft_p_min, adaptive=False
        ),
    )
    ours: list[Run] = []
    theirs: list[Run] = []
    # The engine uses one thread for a model wholly on a GPU: llama.cpp gets the same.
    threads = engine.target.n_threads
    models = [engine.target, *([engine.draft] if engine.draft is not None else [])]

    def answer() -> GenerationStats:
        for model in models:
            model.reset()
        return collect(engine.generate(prompt, settings)).stats

    try:
        prompt = engine.tokenize(args.prompt)
        answer()  # warm-up: graphs, caches
        for _ in range(args.repeats):
            theirs.append(run_llama_cpp(binary, args, threads))
            stats = answer()
            ours.append(
                Run(
                    stats.n_predict,
                    stats.decode_tokens_per_second,
                    stats.acceptance,
                    stats.prompt_ms + stats.decode_ms,
                )
            )
        with decode_timer() as spent:
            stats = answer()
        with recording() as recorded:
            answer()
        memories = [llama_cpp.llama_get_memory(model.context) for model in models]
        # Each answer right beside its replay: a machine whose speed drifts from
        # run to run (a shared host) shifts both alike.
        pairs: list[tuple[float, float]] = []
        for _ in range(args.pairs):
            answered = answer()
            answered_ms = answered.prompt_ms + answered.decode_ms
            pairs.append((answered_ms, replay_seconds(recorded, memories) * 1000))
    finally:
        engine.close()
    wall_ms = stats.prompt_ms + stats.decode_ms
    outside_ms = wall_ms - spent[0] * 1000
    work_share = outside_ms / wall_ms
    work_per_step = outside_ms / max(stats.n_steps, 1)
    step_ms = stats.decode_ms / max(stats.n_steps, 1)
    answer_ms = statistics.median(a for a, _ in pairs)
    difference_ms = statistics.median(a - r for a, r in pairs)
    overhead = difference_ms / answer_ms
    overhead_per_step = difference_ms / max(stats.n_steps, 1)
    differences = sorted(a - r for a, r in pairs)
    ours_speed = statistics.median(r.tokens_per_second for r in ours)
    theirs_speed = statistics.median(r.tokens_per_second for r in theirs)
    print(
        f"settings: n={args.n_predict} draft-max {args.draft_max} draft-min {args.draft_min} "
        f"p-min {args.draft_p_min} ngl {args.gpu_layers} threads {threads}, "
        f"median of {args.repeats}"
    )
    print(
        f"llama-speculative-simple: {theirs_speed:.1f} t/s, acceptance "
        f"{statistics.median(r.acceptance for r in theirs):.1%} "
        f"(runs: {', '.join(f'{r.tokens_per_second:.1f}' for r in theirs)})"
    )
    print(
        f"SpecChat:                 {ours_speed:.1f} t/s, acceptance "
        f"{statistics.median(r.acceptance for r in ours):.1%} "
        f"(runs: {', '.join(f'{r.tokens_per_second:.1f}' for r in ours)}); "
        f"ratio {ours_speed / theirs_speed:.2f}"
    )
    print(
        f"engine work between decodes (timed run, none overlapping): {work_share:.1%} of the "
        f"answer's wall time, {work_per_step:.3f} ms of a {step_ms:.2f} ms step "
        f"({stats.n_steps} steps)"
    )
    print(
        f"engine overhead: {overhead:.1%} of the answer's wall time, {overhead_per_step:.3f} ms "
        f"per step (median of {len(pairs)} answers {answer_ms:.1f} ms, each minus its "
        f"{recorded.n_decodes} decodes replayed back to back right after it: median "
        f"{difference_ms:.1f} ms, quartiles {differences[len(pairs) // 4]:.1f} to "
        f"{differences[(3 * len(pairs)) // 4]:.1f} ms)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "llama_cpp": [vars(r) for r in theirs],
                    "specchat": [vars(r) for r in ours],
                    "work_between_decodes_fraction": work_share,
                    "work_between_decodes_ms_per_step": work_per_step,
                    "overhead_fraction": overhead,
                    "overhead_ms_per_step": overhead_per_step,
                    "answer_and_replay_ms": pairs,
                    "step_ms": step_ms,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
