"""Adaptive draft length vs the best fixed draft-max: a benchmark script, not a test.

For the demo pair and each built-in prompt set, one sweep over fixed draft-max
values with the adaptive cell (``--draft-max auto``) measured in the same run,
interleaved with the plain baseline (core/tune/sweep.py). Reports per set:
plain, the best fixed setting, the defaults (DraftSettings(): the adaptive length
with draft-max 16, i.e. the same cell as auto) and the ratio auto / best fixed
(issue 10's target: >= 0.97). Then the same on a weak draft (the demo target
with 5% weight noise, Q4_1; tests/support/weak_draft.py), where a long fixed draft
loses: plain, best fixed, default and adaptive.

Usage::

    python tests/benchmarks/tune_bench.py [-n 96] [--repeat 1] [--prompts-per-set N]
        [--sets chat,code,rewrite] [--draft-max 2,4,8,16] [--temp 0] [--skip-weak]
        [--threads 2] [--models DIR] [--log-steps FILE]

Every prompt of each set by default: greedy answers are deterministic, so with
fewer prompts one unlucky draft boundary repeats in every repeat (with two of
the four rewrite prompts, auto / best fixed read 0.81-0.84; with all four, 1.01
on the same code). ``--prompts-per-set 2 -n 64`` runs in about a third of the
time for a quick look. Everything runs in a temporary SPECCHAT_HOME (removed at the end)
unless one is set.
Each summary also says in how many answers the adaptive cell drafted exactly as the
best fixed one, and how their tokens/s compared there: the same decoding work, so
that spread is the timing noise every ratio of the run carries, plus the adaptive
controller's own cost of about 0.5 ms a step (on the shared 2-core machine, single
answers of the same steps read 0.87-1.16 of each other).
``--log-steps FILE`` writes one line per answer (set, cell, prompt, tokens/s and
each step's drafted/kept tokens), to see what a cell did in a run that missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from core.demo_models import ensure_demo_pair  # noqa: E402
from core.engine import (  # noqa: E402
    ChatMessage,
    DraftSettings,
    GenerationResult,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
)
from core.engine.config import default_threads  # noqa: E402
from core.tune.prompt_sets import BUILT_IN_SETS, PromptSet, built_in_set  # noqa: E402
from core.tune.runner import EngineRunner  # noqa: E402
from core.tune.sweep import SweepGrid, SweepResult, run_sweep, settings_label  # noqa: E402
from tests.support.bench_home import temporary_home  # noqa: E402
from tests.support.weak_draft import ensure_weak_draft  # noqa: E402


@dataclass(frozen=True)
class _Answer:
    label: str
    prompt: int
    shapes: tuple[tuple[int, int], ...]  # each step's drafted and kept tokens
    tokens_per_second: float


class _StepRecordingRunner(EngineRunner):
    """The sweep's runner, keeping each answer's step shapes (and writing them to
    ``log`` when given)."""

    def __init__(self, engine: SpeculativeEngine, log: TextIO | None, title: str) -> None:
        self._steps_of_answer: list[StepEvent] = []
        super().__init__(engine, on_step=self._steps_of_answer.append)
        self.log = log
        self.title = title
        self.prompts: list[list[int]] = []
        self.answers: list[_Answer] = []

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        tokens = await super().tokenize_chat(messages)
        self.prompts.append(tokens)
        return tokens

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        self._steps_of_answer.clear()
        result = await super().answer(prompt, settings)
        answer = _Answer(
            settings_label(settings.drafting),
            self.prompts.index(prompt),
            tuple((step.n_drafted, step.n_accepted) for step in self._steps_of_answer),
            result.stats.decode_tokens_per_second,
        )
        self.answers.append(answer)
        if self.log is not None:
            shapes = " ".join(f"{drafted}/{kept}" for drafted, kept in answer.shapes)
            self.log.write(
                f"{self.title} p{answer.prompt} {answer.label:<28} "
                f"{answer.tokens_per_second:6.1f} t/s {len(answer.shapes):3} steps | {shapes}\n"
            )
            self.log.flush()
        return result


def _same_steps_ratios(answers: list[_Answer], auto: str, fixed: str, measured: int) -> list[float]:
    """auto / fixed tokens/s of the measured answers (the last ``measured`` of each
    cell: before them, the adaptive cell's warm-up) where the adaptive cell drafted
    exactly as the fixed one: the same decoding work, so their ratio is timing noise
    and the controller's own cost."""

    def by_prompt(label: str) -> dict[int, list[_Answer]]:
        grouped: dict[int, list[_Answer]] = {}
        for answer in [a for a in answers if a.label == label][-measured:]:
            grouped.setdefault(answer.prompt, []).append(answer)
        return grouped

    fixed_answers = by_prompt(fixed)
    return [
        mine.tokens_per_second / theirs.tokens_per_second
        for prompt, autos in by_prompt(auto).items()
        for mine, theirs in zip(autos, fixed_answers[prompt], strict=True)
        if mine.shapes == theirs.shapes
    ]


def _shortened(prompt_set: PromptSet, count: int) -> PromptSet:
    if count <= 0:
        return prompt_set
    return PromptSet(prompt_set.name, prompt_set.prompts[:count], prompt_set.description)


def _summary(title: str, result: SweepResult, answers: list[_Answer]) -> dict[str, float]:
    best = result.best(fixed_only=True)
    auto = next(cell for cell in result.cells if cell.drafting.adaptive)
    assert best is not None
    base = result.baseline.decode_tokens_per_second
    ratio = auto.decode_tokens_per_second / best.decode_tokens_per_second
    print(f"\n{title}")
    print(f"  {'plain':<30}{base:7.1f} t/s")
    for cell in result.cells:
        mark = "*" if cell is best else " "
        print(
            f" {mark}{settings_label(cell.drafting):<30}{cell.decode_tokens_per_second:7.1f} t/s "
            f"{result.speedup(cell):5.2f}x  accept {cell.acceptance * 100:5.1f}%"
        )
    print(
        f"  best fixed {settings_label(best.drafting)}: {result.speedup(best):.2f}x plain; "
        f"default (= auto) {result.speedup(auto):.2f}x plain; auto / best fixed {ratio:.2f} "
        f"({'meets' if ratio >= 0.97 else 'misses'} 0.97); best fixed / default "
        f"{best.decode_tokens_per_second / auto.decode_tokens_per_second:.2f}"
    )
    measured = result.repeats * result.prompt_count
    same = _same_steps_ratios(
        answers, settings_label(auto.drafting), settings_label(best.drafting), measured
    )
    if same:
        print(
            f"  timing noise: in {len(same)} of {measured} answers auto drafted exactly as "
            f"{settings_label(best.drafting)}; there its tokens/s read "
            f"{statistics.median(same):.3f} of the fixed cell's (median; "
            f"{min(same):.3f}-{max(same):.3f})"
        )
    return {"ratio": ratio, "best": result.speedup(best), "auto": result.speedup(auto)}


async def _sweep(
    engine: SpeculativeEngine, prompt_set: PromptSet, args: argparse.Namespace, title: str
) -> tuple[SweepResult, list[_Answer]]:
    grid = SweepGrid(draft_max=args.draft_max, also_auto=True)
    settings = GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(temperature=args.temp, seed=1),
        drafting=DraftSettings(),
    )
    runner = _StepRecordingRunner(engine, args.log_steps, title)
    result = await run_sweep(runner, prompt_set, grid, settings, args.repeat)
    return result, runner.answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--n-predict", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--prompts-per-set", type=int, default=0, help="the first N prompts (0: all)"
    )
    parser.add_argument("--sets", default=",".join(BUILT_IN_SETS))
    parser.add_argument(
        "--draft-max", type=lambda t: tuple(int(v) for v in t.split(",")), default=(2, 4, 8, 16)
    )
    parser.add_argument("--temp", type=float, default=0.0)
    parser.add_argument("--skip-weak", action="store_true")
    parser.add_argument("-t", "--threads", type=int, default=default_threads())
    parser.add_argument("--models", type=Path, help="folder of the demo pair")
    parser.add_argument(
        "--log-steps", type=argparse.FileType("w"), help="write each answer's steps here"
    )
    args = parser.parse_args()
    if "SPECCHAT_HOME" in os.environ:
        _bench(args)
        return
    # A home of its own, removed afterwards (tests/support/bench_home.py): the weak
    # draft written into it takes hundreds of megabytes.
    with temporary_home("specchat-tune-bench-"):
        _bench(args)


def _bench(args: argparse.Namespace) -> None:
    pair = ensure_demo_pair(args.models) if args.models else ensure_demo_pair()
    print(
        f"n={args.n_predict}, repeats={args.repeat}, "
        f"{args.prompts_per_set or 'all'} prompts per set, "
        f"temperature {args.temp:g}, threads {args.threads}"
    )
    target = ModelConfig(pair.target, n_ctx=2048, n_threads=args.threads)
    sets = [_shortened(built_in_set(name), args.prompts_per_set) for name in args.sets.split(",")]
    with SpeculativeEngine(target, ModelConfig(pair.draft, n_threads=args.threads)) as engine:
        for prompt_set in sets:
            result, answers = asyncio.run(_sweep(engine, prompt_set, args, prompt_set.name))
            _summary(f"demo pair, set {prompt_set.name}", result, answers)
    if args.skip_weak:
        return
    weak = ensure_weak_draft(pair)
    with SpeculativeEngine(target, ModelConfig(weak, n_threads=args.threads)) as engine:
        result, answers = asyncio.run(_sweep(engine, sets[0], args, f"weak {sets[0].name}"))
        _summary(f"weak draft ({weak.name}), set {sets[0].name}", result, answers)


if __name__ == "__main__":
    main()
