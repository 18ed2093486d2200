"""How often greedy speculative output differs from plain greedy output, and why.

On a CPU build the two are identical: the target's logits for a token do not depend
on how many tokens share its batch. On a GPU the batched and single-token kernels
add in different orders, so a logit can move by a rounding error, and where the
target's two best tokens are that close, the argmax can flip. This script counts
the divergences over prompts and draft lengths and, for each, prints the target's
top-two logit gap at the first differing position, measured the way plain decoding
sees it (single-token decode) and the way verification sees it (inside a batch).
A divergence at a gap far above rounding (``--tie`` logits) would be a bug.

    python tests/benchmarks/greedy_divergence.py TARGET DRAFT [-ngl 99] [-n 256]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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
from core.engine.model import LoadedModel

PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle works to a ten year old.",
    "List five tips for writing clean Python code, with one sentence each.",
    "What is the capital of France? Answer in one sentence.",
    "Give me three tips for a good night's sleep.",
    "Describe the water cycle in a few sentences.",
)
GREEDY = SamplingSettings(temperature=0.0)


@dataclass(frozen=True)
class Divergence:
    prompt: int
    draft_max: int
    position: int
    plain_token: int
    speculative_token: int
    gap_single: float  # top-1 minus top-2 logit, single-token decode (plain's view)
    gap_batched: float  # the same inside a verification-sized batch
    top_two: bool  # the two differing tokens are the target's two best


def _top_two(logits: np.ndarray) -> tuple[float, set[int]]:
    best = np.argpartition(logits, -2)[-2:]
    values = sorted(float(logits[i]) for i in best)
    return values[1] - values[0], {int(i) for i in best}


def explain(
    target: LoadedModel, history: list[int], plain: int, speculative: int, batch: int
) -> tuple[float, float, bool]:
    """Top-two gaps after ``history``, single-token and as row 0 of a ``batch``-token batch."""
    target.reset()
    target.prefill(history[:-1])
    target.append([history[-1]])
    gap_single, best = _top_two(target.logits(-1).copy())
    target.forget_from(len(history) - 1)
    # Verification decodes the last token plus the draft in one batch; the draft's
    # content does not change row 0's logits, only the kernels that compute them.
    target.append([history[-1], *([plain] * (batch - 1))], all_logits=True)
    gap_batched, _ = _top_two(target.logits(0).copy())
    target.reset()
    return gap_single, gap_batched, {plain, speculative} == best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("draft", type=Path)
    parser.add_argument("-ngl", "--gpu-layers", type=int, default=-1)
    parser.add_argument("-t", "--threads", type=int, default=None)
    parser.add_argument("-n", "--n-predict", type=int, default=256)
    parser.add_argument("--draft-max", type=int, action="append", help="repeatable")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--tie", type=float, default=0.05, help="largest gap counted as a tie")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    draft_lengths = args.draft_max or [4, 8, 16]
    threads = {"n_threads": args.threads} if args.threads else {}
    engine = SpeculativeEngine(
        ModelConfig(args.target, n_gpu_layers=args.gpu_layers, n_ctx=2048, **threads),
        ModelConfig(args.draft, n_gpu_layers=args.gpu_layers, **threads),
    )
    divergences: list[Divergence] = []
    runs = 0
    try:
        for prompt_index, text in enumerate(PROMPTS[: args.prompts]):
            prompt = engine.tokenize_chat([ChatMessage("user", text)])
            plain_settings = GenerationSettings(
                n_predict=args.n_predict,
                sampling=GREEDY,
                drafting=DraftSettings(source=DraftSource.NONE),
            )
            plain = collect(engine.generate(prompt, plain_settings)).token_ids
            for draft_max in draft_lengths:
                settings = GenerationSettings(
                    n_predict=args.n_predict,
                    sampling=GREEDY,
                    drafting=DraftSettings(n_max=draft_max, adaptive=False),
                )
                speculative = collect(engine.generate(prompt, settings)).token_ids
                runs += 1
                if speculative == plain:
                    continue
                index = next(
                    (i for i, (a, b) in enumerate(zip(plain, speculative, strict=False)) if a != b),
                    min(len(plain), len(speculative)),
                )
                if index >= min(len(plain), len(speculative)):
                    print(f"prompt {prompt_index} draft-max {draft_max}: lengths differ only")
                    continue
                single, batched, top_two = explain(
                    engine.target,
                    prompt + plain[:index],
                    plain[index],
                    speculative[index],
                    draft_max + 1,
                )
                divergence = Divergence(
                    prompt_index,
                    draft_max,
                    index,
                    plain[index],
                    speculative[index],
                    single,
                    batched,
                    top_two,
                )
                divergences.append(divergence)
                print(
                    f"prompt {prompt_index} draft-max {draft_max}: diverged at token {index}, "
                    f"top-2 gap {single:.5f} (single) / {batched:.5f} (batched), "
                    f"differing tokens are the top two: {top_two}"
                )
    finally:
        engine.close()
    wide = [d for d in divergences if min(d.gap_single, d.gap_batched) > args.tie or not d.top_two]
    print(
        f"divergence: {len(divergences)} of {runs} speculative runs differ from plain "
        f"(n={args.n_predict}, draft-max {draft_lengths}); "
        f"{len(divergences) - len(wide)} at a near-tie (gap <= {args.tie}), {len(wide)} not"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"runs": runs, "divergences": [asdict(d) for d in divergences]})
        )
    return 1 if wide else 0


if __name__ == "__main__":
    sys.exit(main())
