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

``--set`` records a built-in prompt set's prompts instead of the bench's.
``--warm`` replays the answers in a row as a chat or a sweep runs them: each
starts from the last one's memory and knows the plain step's time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
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
from core.engine.draft_length import DraftLengthController  # noqa: E402
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
) -> float:
    plain_ms, draft_ms, row_ms, verify_overhead_ms, draft_overhead_ms = costs
    position, elapsed, plain_run = 0, 0.0, 0
    while position < len(right):
        length = controller.next_length()
        jitter = float(np.exp(rng.normal(0.0, noise)))
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
    args = parser.parse_args()
    record(args) if args.command == "record" else replay(args)


if __name__ == "__main__":
    main()
