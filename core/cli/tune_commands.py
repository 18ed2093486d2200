"""``specchat-cli sweep | ab | calibrate``: measure draft settings on a pair.

sweep: a grid of draft settings on a prompt set, each cell against plain decoding
    measured in the same run (see core/tune/sweep.py); a table with the fastest row
    marked when it beat plain decoding, or ``--json``. ``--auto`` measures the adaptive
    draft length instead.
ab: one prompt decoded with the given draft settings and plainly.
calibrate: a short sweep whose fastest setting, when it beat plain decoding, is saved
    for the pair, so the window starts tuned with it.

``--predict`` (sweep) and calibrate also use the pair's verification cost curve
(measured once per pair and saved with its results, core/tune/cost_curve.py): with
the acceptance the sweep saw it predicts the speed-up of every draft length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from core.cli.bench import check_tokens_to_measure
from core.cli.failures import EXIT_INTERRUPTED, UsageError, flag_values
from core.cli.model_files import (
    DRAFT_ROLE,
    TARGET_ROLE,
    check_model_file,
    demo_pair,
    warn_about_threads,
    warn_if_draft_is_target,
)
from core.cli.terminal import is_terminal
from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
)
from core.engine.config import Verification, default_threads, parse_draft_max
from core.errors import ConfigError
from core.interrupts import sigint_calls
from core.settings import pair_key, shared_settings
from core.tune.ab import run_ab
from core.tune.calibration import CALIBRATION_GRID, CALIBRATION_TOKENS, calibrate
from core.tune.cost_curve import CostCurve
from core.tune.prediction import Prediction, pair_curve, sweep_prediction
from core.tune.prompt_sets import BUILT_IN_SETS, PromptSet, built_in_set, load_prompt_file
from core.tune.runner import EngineRunner
from core.tune.sweep import (
    SweepControl,
    SweepGrid,
    SweepProgress,
    SweepResult,
    parse_values,
    run_sweep,
)
from core.tune.sweep import settings_label as label


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(value) for value in parse_values(text, int, "draft-max/min"))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(value) for value in parse_values(text, float, "p-min"))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", type=Path, help="target (default: the demo pair)")
    parser.add_argument("-md", "--model-draft", type=Path, help="draft (default: the demo pair)")
    parser.add_argument("-n", "--n-predict", type=int, default=128)
    parser.add_argument("-t", "--threads", type=int, default=default_threads())
    parser.add_argument("-ngl", "--n-gpu-layers", dest="gpu_layers", type=int, default=-1)
    parser.add_argument("--temp", type=float, default=0.0, help="temperature (default 0: greedy)")
    parser.add_argument("-s", "--seed", type=int, default=1)
    parser.add_argument(
        "--verification",
        choices=[v.value for v in Verification],
        default=Verification.SPECULATIVE.value,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _prompt_choice(parser: argparse.ArgumentParser) -> None:
    prompts = parser.add_mutually_exclusive_group()
    prompts.add_argument(
        "--prompts",
        type=Path,
        help="a file: JSON list of prompts or of chat messages, or text with '---' lines "
        "between prompts",
    )
    prompts.add_argument(
        "--set", choices=BUILT_IN_SETS, default="chat", help="a built-in prompt set"
    )


# What each command's --help says (the module docstring is for readers of the code).
SWEEP_HELP = (
    "Measure a grid of draft settings on a prompt set: each cell against plain decoding "
    "in the same run, so a busy moment on the machine hurts both alike. Prints a table "
    "with the fastest setting marked when it beat plain decoding (or --json). --auto "
    "measures the adaptive draft length; --predict adds the speed-up the pair's "
    "verification cost curve predicts for every draft length."
)
AB_HELP = (
    "Decode one prompt twice, with the given draft settings and plainly, and compare "
    "speed, acceptance and the answers."
)
CALIBRATE_HELP = (
    f"A short sweep (draft-max {','.join(map(str, CALIBRATION_GRID.draft_max))} x p-min "
    f"{','.join(f'{p:g}' for p in CALIBRATION_GRID.p_min)}) whose fastest setting, when it "
    "beats plain decoding, is saved for the pair: the window and later runs start with "
    "it. When none beats plain decoding the adaptive draft length is saved instead."
)


def build_sweep_parser(prog: str = "specchat-cli sweep") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=SWEEP_HELP)
    _common(parser)
    _prompt_choice(parser)
    parser.add_argument("--draft-max", type=_ints, default=(2, 4, 8, 16), help="e.g. 2,4,8,16")
    parser.add_argument("--draft-p-min", type=_floats, default=(0.0,), help="e.g. 0,0.5,0.8")
    parser.add_argument("--draft-min", type=_ints, default=(0,), help="e.g. 0,2")
    parser.add_argument(
        "--ngram", action="store_true", help="also sweep n-gram prompt lookup as the draft source"
    )
    parser.add_argument(
        "--no-model", action="store_true", help="no draft-model cells (n-gram only)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="repeats per cell (median kept)")
    parser.add_argument(
        "--auto", action="store_true", help="measure the adaptive draft length (--draft-max auto)"
    )
    parser.add_argument(
        "--predict",
        action="store_true",
        help="also predict every draft length's speed-up from the pair's verification cost "
        "curve (measured once per pair and placement, then reused)",
    )
    return parser


def build_ab_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specchat-cli ab", description=AB_HELP)
    _common(parser)
    parser.add_argument("-p", "--prompt", required=True, help="the user message")
    parser.add_argument("--draft-max", default="auto", help="a number or 'auto' (the default)")
    parser.add_argument("--draft-min", type=int, default=0)
    parser.add_argument("--draft-p-min", type=float, default=0.0)
    parser.add_argument("--ngram", action="store_true", help="draft with n-gram prompt lookup")
    return parser


def _check_counts(args: argparse.Namespace) -> None:
    """Counts a measurement cannot run with (a speed of 0 tokens, a median of nothing)."""
    check_tokens_to_measure(args.n_predict)
    repeat = getattr(args, "repeat", 1)
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")


def _pair(args: argparse.Namespace, needs_draft: bool) -> tuple[ModelConfig, ModelConfig | None]:
    target_path, draft_path = args.model, args.model_draft
    if target_path is not None:
        check_model_file(target_path, TARGET_ROLE)
    else:
        demo = demo_pair()
        target_path, draft_path = demo.target, draft_path or demo.draft
    if needs_draft and draft_path is None:
        raise UsageError("drafting with a model needs a draft: pass -md DRAFT (or --ngram)")
    if needs_draft and args.model_draft is not None:
        check_model_file(args.model_draft, DRAFT_ROLE)
    target = ModelConfig(target_path, n_gpu_layers=args.gpu_layers, n_threads=args.threads)
    draft = (
        ModelConfig(draft_path, n_gpu_layers=args.gpu_layers, n_threads=args.threads)
        if needs_draft
        else None
    )
    warn_about_threads(args.threads)
    warn_if_draft_is_target(target_path, draft_path if needs_draft else None)
    return target, draft


def _generation(args: argparse.Namespace, drafting: DraftSettings) -> GenerationSettings:
    return GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(temperature=args.temp, seed=args.seed),
        drafting=drafting,
    )


def _prompt_set(args: argparse.Namespace) -> PromptSet:
    return load_prompt_file(args.prompts) if args.prompts else built_in_set(args.set)


def _sources(args: argparse.Namespace) -> tuple[DraftSource, ...]:
    sources: tuple[DraftSource, ...] = () if args.no_model else (DraftSource.MODEL,)
    if args.ngram:
        sources += (DraftSource.NGRAM,)
    if not sources:
        raise UsageError("--no-model without --ngram leaves nothing to sweep; add --ngram")
    return sources


# Without a terminal (a log file, a pipe) the progress goes on new lines, at most
# this many for the measured answers (every quarter), plus the first warm-up line of
# each adaptive cell.
_LOGGED_STEPS = 4


def _print_progress(err: TextIO) -> Callable[[SweepProgress], None]:
    """Progress on one line redrawn with carriage returns on a terminal, else a few
    whole lines (a log file gets no carriage-return junk)."""
    if not is_terminal(err):
        return _log_progress(err)
    shown = 0  # the length of the line drawn last

    def show(progress: SweepProgress) -> None:
        nonlocal shown
        if progress.cells_refreshed:
            return  # the same count was shown when its last answer finished
        # Padded to cover the line before: a warm-up line is longer than the answer
        # counts that follow it.
        line = progress.describe()
        err.write("\r" + line.ljust(shown))
        shown = len(line)
        if progress.done == progress.total:
            err.write("\n")
        err.flush()

    return show


def _log_progress(err: TextIO) -> Callable[[SweepProgress], None]:
    logged_step = 0  # the last quarter written

    def show(progress: SweepProgress) -> None:
        nonlocal logged_step
        if progress.cells_refreshed:
            return
        if progress.warm_up is not None:
            if progress.warm_up.answer == 1:
                err.write(progress.describe() + "\n")
                err.flush()
            return
        step = progress.done * _LOGGED_STEPS // max(progress.total, 1)
        if step > logged_step:
            logged_step = step
            err.write(progress.describe() + "\n")
            err.flush()

    return show


def _grid(args: argparse.Namespace) -> tuple[SweepGrid, GenerationSettings]:
    """The grid and the settings the flags ask for (UsageError for a bad value)."""
    with flag_values():
        grid = SweepGrid(
            draft_max=args.draft_max,
            p_min=args.draft_p_min,
            draft_min=args.draft_min,
            sources=_sources(args),
            auto=args.auto,
        )
        grid.cells(DraftSettings())
        drafting = DraftSettings(verification=Verification(args.verification))
        return grid, _generation(args, drafting)


async def _sweep(
    args: argparse.Namespace,
    grid: SweepGrid,
    settings: GenerationSettings,
    engine: SpeculativeEngine,
    err: TextIO,
    control: SweepControl,
) -> SweepResult:
    show = _print_progress(err)
    result = await run_sweep(
        EngineRunner(engine),
        _prompt_set(args),
        grid,
        settings,
        args.repeat,
        on_progress=show,
        control=control,
    )
    result.target = engine.target.path.name
    result.draft = engine.draft.path.name if engine.draft else ""
    return result


def write_prediction(curve: CostCurve, prediction: Prediction | None, out: TextIO) -> None:
    """The curve at a few batch sizes, then the predicted speed-up per draft length."""
    ks = [k for k in (2, 4, 8, 9, 16, 17) if k <= len(curve.target_ms)]
    ratios = ", ".join(f"{k}: {curve.ratio(k):.2f}" for k in ks)
    out.write(
        f"cost curve V(k)/V(1) ({curve.device or 'this machine'}, V(1) = "
        f"{curve.target_ms[0]:.1f} ms, draft {curve.draft_ms:.1f} ms/token): {ratios}\n"
    )
    if prediction is None:
        out.write("no cell with p-min 0 and draft-min 0 to read the acceptance from\n")
        return
    speeds = ", ".join(f"{k}: {s:.2f}x" for k, s in prediction.speedups.items())
    k, best = prediction.best
    out.write(
        f"predicted speed-up by draft-max (acceptance {prediction.alpha:.2f} per token): "
        f"{speeds}; best {k} ({best:.2f}x)\n"
    )


def prediction_dict(curve: CostCurve, prediction: Prediction | None) -> dict[str, object]:
    return {
        "cost_curve": curve.to_dict(),
        "alpha": prediction.alpha if prediction else None,
        "predicted_speedup": (
            {str(k): s for k, s in prediction.speedups.items()} if prediction else {}
        ),
        "predicted_best": prediction.best[0] if prediction else None,
    }


def write_sweep_table(result: SweepResult, out: TextIO) -> None:
    """The settings, tokens/s, speed-up, acceptance and mean accepted length per cell."""
    out.write(
        f"prompt set {result.prompt_set}, n={result.n_predict}, repeats={result.repeats}, "
        f"temperature {result.temperature:g}\n"
    )
    out.write(f"  {'settings':<28}{'tok/s':>8}{'speedup':>9}{'accept':>9}{'mean len':>10}\n")
    base = result.baseline.decode_tokens_per_second
    out.write(f"  {'plain':<28}{base:8.1f}{1.0:8.2f}x\n")
    best = result.winner()
    for cell in result.cells:
        mark = "*" if cell is best else " "
        out.write(
            f"{mark} {label(cell.drafting):<28}{cell.decode_tokens_per_second:8.1f}"
            f"{result.speedup(cell):8.2f}x{cell.acceptance * 100:8.1f}%"
            f"{cell.mean_accepted_length:10.2f}\n"
        )
    if result.partial:
        out.write(f"partial: {result.describe_partial()}\n")
    elif best is not None:
        out.write("(* marks the fastest setting)\n")
    elif result.cells:
        out.write(f"{result.no_winner()}\n")


def run_sweep_command(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_sweep_parser().parse_args(argv)
    _check_counts(args)
    grid, settings = _grid(args)
    control = SweepControl()
    target, draft = _pair(args, needs_draft=not args.no_model)
    with SpeculativeEngine(target, draft) as engine:

        def cancel() -> None:
            control.cancel()
            engine.cancel()

        # Ctrl+C stops the sweep after (or within) the running answer and prints what
        # every cell measured on the prompts they all answered.
        with sigint_calls(cancel):
            result = asyncio.run(_sweep(args, grid, settings, engine, err, control))
        if result.partial and is_terminal(err):
            err.write("\n")  # end the progress line
        curve = None
        if args.predict and not result.partial:
            key = pair_key(target.path, draft.path if draft else None, DraftSource.MODEL)
            curve = asyncio.run(pair_curve(EngineRunner(engine), key, sweep=result))
    prediction = sweep_prediction(result, curve) if curve else None
    if args.json:
        data = result.to_dict()
        if curve is not None:
            data.update(prediction_dict(curve, prediction))
        out.write(json.dumps(data) + "\n")
    else:
        write_sweep_table(result, out)
        if curve is not None:
            write_prediction(curve, prediction, out)
    return EXIT_INTERRUPTED if result.partial else 0


def run_ab_command(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_ab_parser().parse_args(argv)
    _check_counts(args)
    with flag_values():
        n_max, adaptive = parse_draft_max(args.draft_max)
        drafting = DraftSettings(
            source=DraftSource.NGRAM if args.ngram else DraftSource.MODEL,
            n_max=n_max,
            n_min=args.draft_min,
            p_min=args.draft_p_min,
            verification=Verification(args.verification),
            adaptive=bool(adaptive),
        )
        _generation(args, drafting)
    target, draft = _pair(args, needs_draft=not args.ngram)
    with SpeculativeEngine(target, draft) as engine:
        result = asyncio.run(
            run_ab(
                EngineRunner(engine),
                [ChatMessage("user", args.prompt)],
                _generation(args, drafting),
            )
        )
    if args.json:
        out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return 0
    for name, answer in (("plain", result.plain), ("speculative", result.speculative)):
        out.write(f"--- {name}: {answer.stats.decode_tokens_per_second:.1f} tokens/s\n")
        out.write(answer.text + "\n")
    out.write(
        f"--- speed-up {result.speedup:.2f}x, acceptance {result.acceptance * 100:.1f}%, "
        f"answers {'identical' if result.identical else 'different'}"
        f"{'' if result.identity_promised else ' (not promised with speculative sampling)'}\n"
    )
    warning = result.slower_warning()
    if warning:
        out.write(f"warning: {warning}\n")
    return 0


def run_calibrate_command(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="specchat-cli calibrate", description=CALIBRATE_HELP)
    _common(parser)
    _prompt_choice(parser)
    parser.set_defaults(n_predict=CALIBRATION_TOKENS)
    args = parser.parse_args(argv)
    _check_counts(args)
    with flag_values():
        _generation(args, DraftSettings(verification=Verification(args.verification)))
    target, draft = _pair(args, needs_draft=True)
    assert draft is not None
    key = pair_key(target.path, draft.path, DraftSource.MODEL)
    store = shared_settings()
    with SpeculativeEngine(target, draft) as engine:
        settings = _generation(args, DraftSettings(verification=Verification(args.verification)))
        calibration = asyncio.run(
            calibrate(EngineRunner(engine), _prompt_set(args), settings, store, key)
        )
    write_sweep_table(calibration.sweep, out)
    if calibration.curve is not None:
        write_prediction(calibration.curve, calibration.prediction, out)
    out.write(f"{calibration.describe()}; saved for {target.path.name} + {draft.path.name}\n")
    return 0


_COMMANDS = {"sweep": run_sweep_command, "ab": run_ab_command, "calibrate": run_calibrate_command}


def run_tune_command(argv: list[str]) -> int:
    """Dispatch ``argv`` (its first item names the subcommand)."""
    return _COMMANDS[argv[0]](argv[1:])
