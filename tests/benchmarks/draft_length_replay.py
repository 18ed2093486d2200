"""Replay real answers through the draft-length controller: a benchmark script, not a test.

Timing the adaptive draft length on a shared 2-core machine mixes the
controller's choices with the machine's noise. This script separates them:

1. ``record``: generate answers on a real pair with a fixed draft of 16 tokens and
   keep, for every step, how many drafted tokens the target kept. That says, for
   every position of the answer, whether the draft proposed the token the target
   emitted (runs of acceptance and all).
2. ``replay``: drive ``DraftLengthController`` over those answers with a cost
   model (plain step, per drafted token, per verified row, the fixed overhead of a
   drafting step, each step with lognormal noise) and report the speed-up over
   plain decoding of the adaptive length and of fixed lengths. A draft shorter
   than 16 keeps the recorded tokens up to its length; the sample drawn at the
   first rejection may differ from the recorded one, which is why this is a
   replay of where acceptance happened, not of the exact answer.

Default costs are the demo pair's on 2 CPU cores (plain step 22 ms, 7.5 ms per
drafted token, 2 ms per verified row, 16 ms fixed per drafting step). ``--costs``
takes others, e.g. ``20,8.6,2.8,20,8`` (plain, draft token, row, verification
overhead, draft overhead).

Usage::

    python tests/benchmarks/draft_length_replay.py record --temp 0.8 --out demo08.json
        [--draft FILE] [-n 256] [--seeds 4] [--set chat|code|rewrite]
    python tests/benchmarks/draft_length_replay.py replay demo08.json [--costs ...]
        [--lengths 4,8,16] [--noise 0.1] [--repeats 3] [--warm]
    python tests/benchmarks/draft_length_replay.py compare chat.json code.json \
        rewrite.json weak.json --fresh weak.json [--costs "a,b,c,d,e;..."] [--seeds 12]

``--set`` records a built-in prompt set's prompts instead of the bench's.
``--warm`` replays the answers in a row as a chat or a sweep runs them: each
starts from the last one's memory and knows the plain step's time.
``compare`` is tune_bench.py on recorded answers (record them with ``--temp 0 -n 96
--seeds 1 --set NAME``): per set, the adaptive cell's speed-up against the best
fixed length's, counted as a sweep counts them, in two rounds, with the adaptive
answers carrying their memory from set to set as one engine's sweeps do, over
noise seeds and several cost settings. Differences of 0.01-0.02 are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from core.cli.bench import DEFAULT_PROMPTS  # noqa: E402
from core.demo_models import ensure_demo_pair  # noqa: E402
from core.engine import (  # noqa: E402
    ChatMessage,
    DraftSettings,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
)
from core.engine.draft_hindsight import RECORD_TOKENS  # noqa: E402
from core.engine.draft_length import DraftLengthController, DraftLengthMemory  # noqa: E402
from core.tune.prompt_sets import built_in_set  # noqa: E402

RECORD_LENGTH = 16


def record(args: argparse.Namespace) -> None:
    models = os.environ.get("SPECCHAT_TEST_MODELS")
    pair = ensure_demo_pair(Path(models) if models else None)
    draft = Path(args.draft) if args.draft else pair.draft
    answers: list[list[tuple[int, int]]] = []
    with SpeculativeEngine(
        ModelConfig(pair.target, n_ctx=2048, n_threads=args.threads),
        ModelConfig(draft, n_threads=args.threads),
    ) as engine:
        conversations = (
            [list(messages) for messages in built_in_set(args.set).prompts]
            if args.set
            else [[ChatMessage("user", text)] for text in DEFAULT_PROMPTS]
        )
        for messages in conversations:
            prompt = engine.tokenize_chat(messages)
            prompt_text = messages[-1].content
            for seed in range(1, args.seeds + 1):
                engine.target.reset()
                assert engine.draft is not None
                engine.draft.reset()
                settings = GenerationSettings(
                    n_predict=args.n,
                    sampling=SamplingSettings(temperature=args.temp, seed=seed),
                    drafting=DraftSettings(n_max=RECORD_LENGTH, adaptive=False),
                )
                steps = [
                    (event.n_drafted, event.n_accepted)
                    for event in engine.generate(prompt, settings)
                    if isinstance(event, StepEvent) and event.n_drafted
                ]
                answers.append(steps)
                kept = sum(accepted for _, accepted in steps)
                drafted = sum(n for n, _ in steps)
                print(f"prompt {prompt_text[:30]!r} seed {seed}: {kept}/{drafted} kept")
                if args.temp <= 0:
                    break  # greedy: every seed gives the same answer
    Path(args.out).write_text(json.dumps({"temperature": args.temp, "answers": answers}))
    print(f"wrote {len(answers)} answers to {args.out}")


def draft_was_right(steps: list[tuple[int, int]]) -> list[bool]:
    """Per answer position: whether the draft proposed the emitted token (a bonus
    token after a fully kept draft counts as right: nothing says otherwise)."""
    right: list[bool] = []
    for drafted, kept in steps:
        right += [True] * kept + [kept == drafted]
    return right


def replay_answer(
    right: list[bool],
    controller: DraftLengthController,
    costs: tuple[float, float, float, float, float],
    rng: np.random.Generator,
    noise: float,
    catch_up_share: float = 0.2,
    slow_share: float = 0.0,
) -> float:
    """``slow_share``: the share of steps slowed by half again (another process took
    the CPU), on top of the lognormal ``noise``: measured steps on 2 cores sit near
    their fastest with such outliers, not symmetric around a mean."""
    plain_ms, draft_ms, row_ms, verify_overhead_ms, draft_overhead_ms = costs
    position, elapsed, plain_run = 0, 0.0, 0
    while position < len(right):
        length = controller.next_length()
        jitter = float(np.exp(rng.normal(0.0, noise)))
        if rng.random() < slow_share:
            jitter *= 1.5
        if length == 0:
            step_ms = plain_ms * jitter
            controller.record(0, 0, 0.0, step_ms)
            elapsed += step_ms
            position += 1
            plain_run += 1
            continue
        kept = 0
        while kept < length and position + kept < len(right) and right[position + kept]:
            kept += 1
        # A draft model first decodes the tokens it sat out, in one batch: measured
        # on the demo draft (Q8_0, 2 threads), 32 tokens took 53 ms against 8.7 ms
        # for one, about a fifth of a drafted token each.
        catch_up = catch_up_share * draft_ms * max(plain_run - 1, 0)
        drafting = (draft_overhead_ms + draft_ms * length + catch_up) * jitter
        verifying = (plain_ms + verify_overhead_ms + row_ms * length) * jitter
        controller.record(length, kept, drafting, verifying)
        elapsed += drafting + verifying
        position += kept + 1
        plain_run = 0
    return position * plain_ms / elapsed


def replay(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.trace).read_text())
    answers = [draft_was_right([tuple(step) for step in steps]) for steps in data["answers"]]
    costs = tuple(float(x) for x in args.costs.split(","))
    assert len(costs) == 5, "--costs takes plain,draft,row,verify-overhead,draft-overhead"
    policies = ["adaptive"] + [f"fixed {n}" for n in args.lengths.split(",")]
    print(f"{args.trace}: temperature {data['temperature']}, {len(answers)} answers")
    print(f"costs (ms): {costs}, noise {args.noise}, repeats {args.repeats}")
    print(f"{'policy':<12}{'median':>8}{'mean':>8}{'min':>8}")
    for policy in policies:
        speedups = []
        for repeat in range(args.repeats):
            memory = None
            for number, right in enumerate(answers):
                controller = (
                    DraftLengthController(
                        RECORD_LENGTH,
                        memory=memory,
                        plain_ms_hint=costs[0] if args.warm else None,
                    )
                    if policy == "adaptive"
                    else DraftLengthController(int(policy.split()[1]), adaptive=False)
                )
                rng = np.random.default_rng(1000 * repeat + number)
                speedups.append(
                    replay_answer(right, controller, costs, rng, args.noise, args.catch_up_share)  # type: ignore[arg-type]
                )
                if args.warm:  # each answer starts where the last one ended, as in a chat
                    memory = controller.memory()
        print(
            f"{policy:<12}{statistics.median(speedups):7.2f}x{statistics.mean(speedups):7.2f}x"
            f"{min(speedups):7.2f}x"
        )


def _set_speedup(
    answers: list[list[bool]],
    controller: Callable[[DraftLengthMemory | None], DraftLengthController],
    costs: tuple[float, float, float, float, float],
    seed: int,
    memory: DraftLengthMemory | None,
    rounds: int = 2,
) -> tuple[float, DraftLengthMemory | None]:
    """A sweep cell's speed-up over a prompt set: each round decodes every answer
    (total tokens over total time, as core/tune/sweep.py counts), the median round
    is kept; adaptive answers start from the last one's memory, and first warm up
    on the set as the sweep's do."""
    speedups = []
    if memory is not None or controller(None).adaptive:
        # As core/tune/sweep.py does: the adaptive cell answers the set from its last
        # prompt back until the draft record holds this set's tokens only (counted
        # here as the tokens emitted: in these replays nearly every step drafts).
        emitted = 0
        for number in reversed(range(len(answers))):
            chosen = controller(memory)
            rng = np.random.default_rng(seed * 7919 + 100 * rounds + number)
            replay_answer(answers[number], chosen, costs, rng, 0.05, slow_share=0.08)
            memory = chosen.memory()
            emitted += len(answers[number])
            if emitted >= RECORD_TOKENS:
                break
    for round_number in range(rounds):
        tokens, plain_equivalent_ms = 0, 0.0
        for number, right in enumerate(answers):
            chosen = controller(memory)
            rng = np.random.default_rng(seed * 7919 + 100 * round_number + number)
            speedup = replay_answer(right, chosen, costs, rng, 0.05, slow_share=0.08)
            tokens += len(right)
            plain_equivalent_ms += len(right) / speedup
            memory = chosen.memory() if chosen.adaptive else memory
        speedups.append(tokens / plain_equivalent_ms)
    return statistics.median(speedups), memory


def compare(args: argparse.Namespace) -> None:
    """tune_bench.py's comparison on recorded answers: per set, the adaptive cell
    against the best of the fixed lengths, over noise seeds and cost settings."""
    lengths = [int(n) for n in args.lengths.split(",")]
    for costs_text in args.costs.split(";"):
        costs = tuple(float(x) for x in costs_text.split(","))
        assert len(costs) == 5, "--costs takes plain,draft,row,verify-overhead,draft-overhead"
        print(f"costs (ms) {costs}")
        carried: dict[int, DraftLengthMemory | None] = {}
        for trace in args.traces:
            data = json.loads(Path(trace).read_text())
            answers = [
                draft_was_right([tuple(step) for step in steps]) for steps in data["answers"]
            ]
            if trace in args.fresh:
                carried.clear()  # another pair: nothing carries over
            ratios, autos, bests = [], [], []
            for seed in range(args.seeds):
                best = max(
                    _set_speedup(
                        answers,
                        lambda _, n=n: DraftLengthController(n, adaptive=False),
                        costs,
                        seed,
                        None,
                    )[0]
                    for n in lengths
                )
                auto, carried[seed] = _set_speedup(
                    answers,
                    lambda memory, hint=costs[0]: DraftLengthController(
                        RECORD_LENGTH, memory=memory, plain_ms_hint=hint
                    ),
                    costs,
                    seed,
                    carried.get(seed),
                )
                ratios.append(auto / best)
                autos.append(auto)
                bests.append(best)
            print(
                f"  {Path(trace).stem:<16} adaptive {statistics.median(autos):.2f}x, best fixed "
                f"{statistics.median(bests):.2f}x, adaptive / best fixed median "
                f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}; "
                f">= 0.97 in {sum(r >= 0.97 for r in ratios)} of {args.seeds})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record")
    rec.add_argument("--temp", type=float, default=0.8)
    rec.add_argument("--draft", help="draft GGUF (default: the demo draft)")
    rec.add_argument("-n", type=int, default=256)
    rec.add_argument("--seeds", type=int, default=4)
    rec.add_argument("--threads", type=int, default=2)
    rec.add_argument("--out", required=True)
    rec.add_argument("--set", help="a built-in prompt set (default: the bench's prompts)")
    rep = commands.add_parser("replay")
    rep.add_argument("trace")
    rep.add_argument("--costs", default="22,7.5,2,10,6")
    rep.add_argument("--lengths", default="4,8,16")
    rep.add_argument("--noise", type=float, default=0.1)
    rep.add_argument("--repeats", type=int, default=3)
    rep.add_argument(
        "--warm",
        action="store_true",
        help="answers in a row share the controller's memory and know the plain step",
    )
    rep.add_argument(
        "--catch-up-share",
        type=float,
        default=0.2,
        help="cost of a sat-out token for the draft to catch up on, per drafted token's",
    )
    cmp = commands.add_parser("compare")
    cmp.add_argument("traces", nargs="+", help="recorded sets, in the order a sweep runs them")
    cmp.add_argument(
        "--costs",
        default="15.6,7.5,2.7,4,4;15.6,6.5,2.5,2,2;18,7.5,2.7,4,4;15.6,7,2,0,2",
        help="cost settings separated by ';'",
    )
    cmp.add_argument("--lengths", default="2,4,8,16")
    cmp.add_argument("--seeds", type=int, default=12)
    cmp.add_argument(
        "--fresh", nargs="*", default=[], help="traces of another pair (no memory carried in)"
    )
    args = parser.parse_args()
    {"record": record, "replay": replay, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
