"""How far apart cells of the same settings read, by the order a sweep runs them in.

A benchmark script, not a test. Every cell here has the same settings (demo pair,
fixed draft-max 8, greedy), so any difference between them is the machine's. Two
orders alternate: cell by cell (a whole pass of one cell over the prompt set, then
the next cell's) and prompt by prompt (every cell answers prompt 1, then every
cell prompt 2, in a rotated order; what core/tune/sweep.py does). For each trial
it prints the cells' tokens/s (median of the repeats' passes), the fastest over the
slowest, and the fastest over the first cell: in a sweep, how much the best of
several equal cells overstates a given one (issue 10's adaptive / best fixed).

Usage::

    python tests/benchmarks/sweep_order_bench.py [--set chat] [--cells 5] [--repeat 2]
        [--trials 6] [-n 96]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from core.demo_models import ensure_demo_pair  # noqa: E402
from core.engine import (  # noqa: E402
    DraftSettings,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
)
from core.engine.config import default_threads  # noqa: E402
from core.tune.prompt_sets import built_in_set  # noqa: E402
from core.tune.runner import EngineRunner  # noqa: E402


async def _trial(
    runner: EngineRunner,
    prompts: list[list[int]],
    settings: GenerationSettings,
    args: argparse.Namespace,
    by_prompt: bool,
) -> list[float]:
    # tokens and decoding ms of each cell's pass in each repeat
    totals = [[[0, 0.0] for _ in range(args.repeat)] for _ in range(args.cells)]

    async def answer(cell: int, repeat: int, prompt: int) -> None:
        result = await runner.answer(prompts[prompt], settings)
        totals[cell][repeat][0] += result.stats.n_predict
        totals[cell][repeat][1] += result.stats.decode_ms

    for repeat in range(args.repeat):
        if by_prompt:
            for prompt in range(len(prompts)):
                for slot in range(args.cells):
                    await answer((slot + prompt + repeat) % args.cells, repeat, prompt)
        else:
            for cell in range(args.cells):
                for prompt in range(len(prompts)):
                    await answer(cell, repeat, prompt)
    return [statistics.median(tokens / ms * 1000 for tokens, ms in passes) for passes in totals]


async def _main(args: argparse.Namespace) -> None:
    pair = ensure_demo_pair()
    threads = default_threads()
    target = ModelConfig(pair.target, n_ctx=2048, n_threads=threads)
    with SpeculativeEngine(target, ModelConfig(pair.draft, n_threads=threads)) as engine:
        runner = EngineRunner(engine)
        prompt_set = built_in_set(args.set)
        prompts = [await runner.tokenize_chat(messages) for messages in prompt_set.prompts]
        settings = GenerationSettings(
            n_predict=args.n_predict,
            sampling=SamplingSettings(temperature=0.0, seed=1),
            drafting=DraftSettings(n_max=8, adaptive=False),
        )
        await runner.answer(prompts[0], replace(settings, n_predict=16))  # warm-up
        print(f"{args.cells} cells of draft-max 8, set {args.set}, repeats {args.repeat}")
        for trial in range(args.trials):
            by_prompt = trial % 2 == 1
            speeds = await _trial(runner, prompts, settings, args, by_prompt)
            print(
                f"{'prompt by prompt' if by_prompt else 'cell by cell':<17}"
                + " ".join(f"{speed:5.1f}" for speed in speeds)
                + f"   fastest/slowest {max(speeds) / min(speeds):.3f}"
                + f"   fastest/first {max(speeds) / speeds[0]:.3f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", default="chat")
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("-n", "--n-predict", type=int, default=96)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
