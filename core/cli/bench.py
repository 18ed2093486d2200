"""``specchat-cli bench``: plain vs speculative decoding on one model pair.

Prints numbers, asserts nothing: decode speed, speed-up over plain decoding,
acceptance, and whether each mode reproduced the plain output token for token.
Modes run interleaved, repeats are summarised by their median, so a slow moment
on the machine hurts every mode alike. One table at temperature 0 (greedy) and
one at --temp (top-k 40, top-p 0.95, min-p 0.05, seeds shared by all modes):
there speculative sampling is compared with sample-and-match ("match"), and only
"match" is expected to reproduce the plain answer of the same seed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from core.cli.failures import UsageError, flag_values
from core.cli.model_files import (
    DRAFT_ROLE,
    TARGET_ROLE,
    check_model_file,
    demo_pair,
    warn_about_threads,
    warn_if_draft_is_target,
)
from core.cli.rpc_arguments import add_rpc_arguments, with_rpc, with_rpc_draft
from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationSettings,
    GenerationStats,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine.config import Verification, default_threads
from core.engine.placement import pair_placement

DEFAULT_PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle works to a ten year old.",
    "List five tips for writing clean Python code, with one sentence each.",
)


@dataclass
class ModeResult:
    speeds: list[float] = field(default_factory=list)
    acceptances: list[float] = field(default_factory=list)
    mean_lengths: list[float] = field(default_factory=list)
    identical: list[bool] = field(default_factory=list)

    def add(self, stats: GenerationStats, identical: bool) -> None:
        self.speeds.append(stats.decode_tokens_per_second)
        self.acceptances.append(stats.acceptance)
        self.mean_lengths.append(stats.mean_accepted_length)
        self.identical.append(identical)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchat-cli bench",
        description=(
            "Plain against speculative and n-gram decoding on one model pair (the demo pair "
            "without -m): decode speed, speed-up, acceptance, and whether each mode "
            "reproduced the plain answer token for token. Modes run interleaved and repeats "
            "are summarised by their median. One table greedy, one sampled at --temp."
        ),
    )
    parser.add_argument(
        "-m",
        "--model",
        type=Path,
        help="target (default: the demo pair); without -md only plain and n-gram "
        "decoding are measured",
    )
    parser.add_argument(
        "-md", "--model-draft", type=Path, help="draft for -m (default: the demo pair's)"
    )
    parser.add_argument("-n", "--n-predict", type=int, default=256)
    parser.add_argument("--draft-max", type=int, action="append", help="repeatable, default 8 16")
    parser.add_argument("--draft-p-min", type=float, default=0.0)
    parser.add_argument(
        "--temp",
        type=float,
        default=0.8,
        help="the sampled table's temperature (a table at 0 is always printed; 0: only that)",
    )
    parser.add_argument(
        "--no-adaptive-draft",
        dest="adaptive",
        action="store_false",
        help="draft --draft-max tokens every step instead of adapting the length",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-t", "--threads", type=int, default=default_threads())
    parser.add_argument("-ngl", "--n-gpu-layers", dest="gpu_layers", type=int, default=-1)
    parser.add_argument("--no-ngram", action="store_true", help="skip the n-gram mode")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    parser.add_argument("-p", "--prompt", action="append", help="repeatable; default: 3 prompts")
    add_rpc_arguments(parser)
    return parser


def run_bench(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    _check_counts(args)
    target_path, draft_path = _pair_paths(args)
    greedy = SamplingSettings(temperature=0.0)
    draft_maxes = args.draft_max or [8, 16]
    with flag_values():
        modes = _modes(args, draft_maxes, with_draft=draft_path is not None)
        # Sample-and-match only differs from speculative sampling when sampling.
        match_mode = (
            f"match max={max(draft_maxes)}",
            DraftSettings(
                n_max=max(draft_maxes),
                p_min=args.draft_p_min,
                adaptive=args.adaptive,
                verification=Verification.MATCH,
            ),
        )
    sampled_modes = modes if draft_path is None else [*modes, match_mode]
    temperatures = [0.0] if args.temp <= 0 else [0.0, args.temp]
    prompts = args.prompt or list(DEFAULT_PROMPTS)
    tables = {
        temperature: {
            name: ModeResult() for name, _ in (modes if temperature <= 0 else sampled_modes)
        }
        for temperature in temperatures
    }

    target = ModelConfig(
        target_path, n_gpu_layers=args.gpu_layers, n_ctx=2048, n_threads=args.threads
    )
    target = with_rpc(args, target)
    draft = None
    if draft_path is not None:
        draft = ModelConfig(draft_path, n_gpu_layers=args.gpu_layers, n_threads=args.threads)
        draft = with_rpc_draft(args, draft)
    warn_about_threads(args.threads)
    warn_if_draft_is_target(target_path, draft_path)
    out.write(f"target {target_path.name}\n")
    if draft_path is None:
        out.write(
            "draft  none: -m without -md, so only plain and n-gram decoding are measured "
            "(pass -md DRAFT to measure speculation with a draft model)\n"
        )
    else:
        out.write(f"draft  {draft_path.name}\n")
    out.write(
        f"n={args.n_predict}, threads={args.threads}, repeats={args.repeats}, "
        f"draft length {'adaptive' if args.adaptive else 'fixed'}\n"
    )
    with SpeculativeEngine(target, draft) as engine:
        # Where the layers really went: -ngl 999 on a CPU-only build offloads none.
        out.write(f"runs on: {pair_placement(engine.target, engine.draft)}\n\n")
        token_prompts = [engine.tokenize_chat([ChatMessage("user", p)]) for p in prompts]
        # Warm-up: first decodes pay for allocation and page faults.
        collect(
            engine.generate(
                token_prompts[0],
                GenerationSettings(n_predict=16, sampling=greedy, drafting=modes[0][1]),
            )
        )
        for repeat in range(args.repeats):
            for prompt_number, prompt in enumerate(token_prompts, start=1):
                for temperature, results in tables.items():
                    # Every mode samples with the same seed for one prompt and repeat.
                    sampling = (
                        greedy
                        if temperature <= 0
                        else SamplingSettings(
                            temperature=temperature, seed=1000 * repeat + prompt_number
                        )
                    )
                    plain_ids: list[int] = []
                    for name, drafting in [*modes, match_mode]:
                        if name not in results:
                            continue
                        engine.target.reset()
                        if engine.draft is not None:
                            engine.draft.reset()
                        settings = GenerationSettings(
                            n_predict=args.n_predict, sampling=sampling, drafting=drafting
                        )
                        result = collect(engine.generate(prompt, settings))
                        if name == "plain":
                            plain_ids = result.token_ids
                        results[name].add(result.stats, result.token_ids == plain_ids)
                        if args.verbose:
                            out.write(
                                f"  temp {temperature:g} prompt {prompt_number} {name:<14}"
                                f"{result.stats.decode_tokens_per_second:7.1f} t/s "
                                f"{result.stats.n_predict:4d} tokens "
                                f"accept {result.stats.acceptance * 100:5.1f}%\n"
                            )

    for temperature, results in tables.items():
        _write_table(out, temperature, results)
    return 0


def _pair_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The target and the draft (None: no draft model) the flags name.

    The demo pair without -m; -m without -md has no draft model (pairing a user's
    target with the demo draft would report the demo draft's vocabulary as the
    problem of a file the user never named).
    """
    target_path, draft_path = args.model, args.model_draft
    if target_path is None:
        if draft_path is not None:
            raise UsageError("-md names a draft but no target: pass the target with -m")
        pair = demo_pair()
        return pair.target, pair.draft
    check_model_file(target_path, TARGET_ROLE)
    if draft_path is None:
        if args.no_ngram:
            raise UsageError(
                "nothing to compare plain decoding with: -m without -md measures n-gram "
                "decoding only, and --no-ngram drops it; pass a draft with -md"
            )
        return target_path, None
    check_model_file(draft_path, DRAFT_ROLE)
    return target_path, draft_path


def _modes(
    args: argparse.Namespace, draft_maxes: list[int], with_draft: bool
) -> list[tuple[str, DraftSettings]]:
    """Plain decoding, the draft model at each draft-max, and n-gram lookup."""
    modes: list[tuple[str, DraftSettings]] = [("plain", DraftSettings(source=DraftSource.NONE))]
    for n_max in draft_maxes if with_draft else []:
        modes.append(
            (
                f"draft max={n_max}",
                DraftSettings(n_max=n_max, p_min=args.draft_p_min, adaptive=args.adaptive),
            )
        )
    if not args.no_ngram:
        modes.append(
            ("ngram", DraftSettings(source=DraftSource.NGRAM, n_max=8, adaptive=args.adaptive))
        )
    return modes


def _check_counts(args: argparse.Namespace) -> None:
    """Counts a benchmark cannot run with (a median of nothing, a speed of 0 tokens)."""
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {args.repeats}")
    check_tokens_to_measure(args.n_predict)
    if any(n_max < 1 for n_max in args.draft_max or []):
        raise UsageError("--draft-max must be at least 1 (plain decoding is always measured)")


def check_tokens_to_measure(n_predict: int) -> None:
    """``-n`` of a command that measures speed: a speed of 0 tokens means nothing."""
    if n_predict < 1:
        raise UsageError(f"-n must be at least 1 token to measure a speed, got {n_predict}")


def _write_table(out: TextIO, temperature: float, results: dict[str, ModeResult]) -> None:
    if temperature > 0:
        out.write(f"\ntemperature {temperature:g} (top-k 40, top-p 0.95, min-p 0.05)\n")
    else:
        out.write("\ngreedy (temperature 0)\n")
    plain_speed = statistics.median(results["plain"].speeds)
    out.write(f"{'mode':<16}{'tok/s':>8}{'speedup':>9}{'accept':>9}{'mean len':>10}  identical\n")
    for name, record in results.items():
        speed = statistics.median(record.speeds)
        # When sampling, only plain and sample-and-match promise the plain answer.
        expected = temperature <= 0 or name == "plain" or name.startswith("match")
        identical = f"{sum(record.identical)}/{len(record.identical)}" if expected else "-"
        out.write(
            f"{name:<16}{speed:8.1f}{speed / plain_speed:8.2f}x"
            f"{statistics.mean(record.acceptances) * 100:8.1f}%"
            f"{statistics.mean(record.mean_lengths):10.2f}  {identical}\n"
        )
