"""``specchat-cli -m TARGET -md DRAFT -p PROMPT ...``: the llama-speculative walkthrough.

Accepts both the flag names the walkthrough uses (``-md``, ``--draft-max``, ``-cd``,
``-ngld``) and llama.cpp's 2026 names (``--spec-draft-model``, ``--spec-draft-n-max``...).
The answer goes to stdout as it is generated; the readout goes to stderr so the
answer can be piped. ``--json`` prints one JSON object to stdout instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from core.cli.failures import EXIT_INTERRUPTED, UsageError, flag_values
from core.cli.main import SUBCOMMANDS
from core.cli.model_files import (
    DRAFT_ROLE,
    TARGET_ROLE,
    check_context,
    check_model_file,
    demo_pair,
    require_file,
    warn_about_threads,
    warn_if_draft_is_target,
)
from core.cli.readout import format_readout
from core.cli.rpc_arguments import add_rpc_arguments, with_rpc, with_rpc_draft
from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationResult,
    GenerationSettings,
    ModelConfig,
    Provenance,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
    StopReason,
    collect,
)
from core.engine.config import (
    AUTO_DRAFT_MAX,
    DEFAULT_BATCH,
    RANDOM_SEED,
    Verification,
    default_threads,
    parse_draft_max,
)
from core.errors import ConfigError
from core.interrupts import sigint_calls

# ANSI colours for --color: accepted drafts green, corrections red, bonus blue.
_COLOURS = {
    Provenance.DRAFT_ACCEPTED: "\033[32m",
    Provenance.TARGET_CORRECTION: "\033[31m",
    Provenance.TARGET_BONUS: "\033[34m",
    Provenance.TARGET_ONLY: "",
}
_RESET = "\033[0m"
# ``-f -``: the prompt comes from standard input, as in many command-line tools.
STDIN_NAME = "-"


def _draft_max(text: str) -> str:
    try:
        parse_draft_max(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specchat-cli",
        description=(
            "Speculative decoding with a draft and a target GGUF model. Without -m the "
            "demo pair (SmolLM2-135M F32 target, Q8_0 draft) is built and used. "
            "Failures are one line; --debug (any subcommand) adds the traceback. "
            f"Subcommands: {', '.join(SUBCOMMANDS)} (see 'specchat-cli SUBCOMMAND --help')."
        ),
    )
    models = parser.add_argument_group("models")
    models.add_argument("-m", "--model", type=Path, help="target model (GGUF)")
    models.add_argument(
        "-md",
        "--model-draft",
        "--spec-draft-model",
        dest="model_draft",
        type=Path,
        help="draft model (GGUF)",
    )
    models.add_argument(
        "-c", "--ctx-size", type=int, default=0, help="target context (0: model's, capped at 4096)"
    )
    models.add_argument(
        "-cd",
        "--ctx-size-draft",
        type=int,
        default=0,
        help="draft context (0: the target's; llama.cpp dropped this flag)",
    )
    models.add_argument(
        "-ngl", "--n-gpu-layers", "--gpu-layers", dest="gpu_layers", type=int, default=-1
    )
    models.add_argument(
        "-ngld",
        "--n-gpu-layers-draft",
        "--spec-draft-ngl",
        dest="gpu_layers_draft",
        type=int,
        default=-1,
    )
    models.add_argument("-t", "--threads", type=int, default=default_threads())
    models.add_argument("-td", "--threads-draft", type=int, default=None)
    models.add_argument("-b", "--batch-size", type=int, default=DEFAULT_BATCH)
    models.add_argument(
        "--repack",
        action="store_true",
        help="enable llama.cpp CPU weight repacking (faster, but crashes on some AMX CPUs)",
    )

    drafting = parser.add_argument_group("drafting")
    defaults = DraftSettings()
    drafting.add_argument(
        "--draft-max",
        "--draft",
        "--spec-draft-n-max",
        dest="draft_max",
        type=_draft_max,
        default=str(defaults.n_max),
        help="most tokens drafted per step, or 'auto': the adaptive draft length "
        f"(up to {AUTO_DRAFT_MAX}), whatever --adaptive-draft says",
    )
    drafting.add_argument(
        "--draft-min", "--spec-draft-n-min", dest="draft_min", type=int, default=defaults.n_min
    )
    drafting.add_argument(
        "--draft-p-min",
        "--spec-draft-p-min",
        dest="draft_p_min",
        type=float,
        default=defaults.p_min,
    )
    drafting.add_argument(
        "--verification",
        choices=[v.value for v in Verification],
        default=defaults.verification.value,
        help=(
            "how drafts are checked at temperature > 0 (greedy always matches). "
            "speculative (default): the draft samples with the same sampler chain and "
            "keeps a token with probability min(1, p/q); every token is an exact sample "
            "of the target's distribution and far more drafts are kept, but a seed does "
            "not give the same answer as without speculation. match: llama.cpp's "
            "sample-and-match; also exact, and the same seed gives the same answer with "
            "and without speculation, at a much lower acceptance"
        ),
    )
    drafting.add_argument(
        "--adaptive-draft",
        action=argparse.BooleanOptionalAction,
        default=defaults.adaptive,
        help=(
            "choose each step's draft length (up to --draft-max) from the speed measured "
            "in this answer, and stop drafting while it is slower than plain decoding "
            "(default: on; --no-adaptive-draft always drafts --draft-max)"
        ),
    )
    source = drafting.add_mutually_exclusive_group()
    source.add_argument("--no-draft", action="store_true", help="plain decoding (the baseline)")
    source.add_argument("--ngram", action="store_true", help="n-gram prompt lookup, no draft model")

    sampling = parser.add_argument_group("sampling")
    sampling_defaults = SamplingSettings()
    sampling.add_argument("-p", "--prompt", help="prompt text")
    sampling.add_argument(
        "-f",
        "--file",
        type=Path,
        metavar="FILE",
        help=f"read the prompt from a file ('{STDIN_NAME}': from standard input)",
    )
    sampling.add_argument(
        "-n", "--n-predict", type=int, default=256, help="tokens to generate (-1: until EOS)"
    )
    sampling.add_argument("--temp", type=float, default=sampling_defaults.temperature)
    sampling.add_argument("-s", "--seed", type=int, default=RANDOM_SEED)
    sampling.add_argument("--top-k", type=int, default=sampling_defaults.top_k)
    sampling.add_argument("--top-p", type=float, default=sampling_defaults.top_p)
    sampling.add_argument("--min-p", type=float, default=sampling_defaults.min_p)
    sampling.add_argument("--repeat-penalty", type=float, default=sampling_defaults.repeat_penalty)
    sampling.add_argument("--repeat-last-n", type=int, default=sampling_defaults.repeat_last_n)
    sampling.add_argument("--sampling-seq", default=sampling_defaults.sequence)
    sampling.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    sampling.add_argument(
        "--chat", action="store_true", help="wrap -p in the model's chat template"
    )
    sampling.add_argument("--system", help="system prompt for --chat")

    add_rpc_arguments(parser)

    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--color", action="store_true", help="colour tokens by provenance")
    return parser


def _read_stdin() -> str:
    """The whole of standard input as UTF-8 text (``-f -``)."""
    stream = sys.stdin
    if stream is None:
        raise ConfigError("-f - reads the prompt from standard input, but there is none")
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text stream without bytes underneath (tests, embedding)
        return stream.read()
    data = binary.read()
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the prompt on standard input (-f -) is not UTF-8 text (byte {exc.start} is "
            "invalid); send it as UTF-8"
        ) from exc


def _read_prompt(args: argparse.Namespace) -> str:
    if args.file is not None and args.prompt is not None:
        raise UsageError("pass the prompt either with -p or with -f, not both")
    if args.system is not None and not args.chat:
        raise UsageError("--system only applies to a chat prompt; add --chat")
    if args.file is not None and str(args.file) == STDIN_NAME:
        return _read_stdin()
    if args.file is not None:
        try:
            return args.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read prompt file {args.file}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"prompt file {args.file} is not UTF-8 text (byte {exc.start} is invalid); "
                "save it as UTF-8"
            ) from exc
    if args.prompt is None:
        raise UsageError("no prompt: pass -p TEXT, or -f FILE (-f - reads standard input)")
    return str(args.prompt)


def _draft_source(args: argparse.Namespace) -> DraftSource:
    if args.no_draft:
        return DraftSource.NONE
    if args.ngram:
        return DraftSource.NGRAM
    return DraftSource.MODEL


def model_configs(args: argparse.Namespace) -> tuple[ModelConfig, ModelConfig | None]:
    """Target and draft configs from the flags; the demo pair when -m is absent."""
    source = _draft_source(args)
    target_path, draft_path = args.model, args.model_draft
    if source is not DraftSource.MODEL and draft_path is not None:
        flag = "--ngram" if source is DraftSource.NGRAM else "--no-draft"
        raise UsageError(
            f"{flag} uses no draft model, so -md {draft_path} would be ignored; drop one"
        )
    if args.threads_draft is not None and args.threads_draft < 1:
        raise UsageError(f"draft threads (-td) must be >= 1, got {args.threads_draft}")
    if target_path is not None:
        require_file(target_path, TARGET_ROLE)
    else:
        pair = demo_pair()
        target_path = pair.target
        draft_path = draft_path or pair.draft
    if source is DraftSource.MODEL and draft_path is None:
        raise UsageError(
            "speculative decoding needs a draft model: pass -md, --ngram or --no-draft"
        )
    if source is DraftSource.MODEL and args.model_draft is not None:
        require_file(draft_path, DRAFT_ROLE)
    with flag_values():
        target = ModelConfig(
            path=target_path,
            n_gpu_layers=args.gpu_layers,
            n_ctx=args.ctx_size,
            n_batch=args.batch_size,
            n_threads=args.threads,
            weight_repack=args.repack,
        )
        target = with_rpc(args, target)
        draft = None
        if source is DraftSource.MODEL:
            draft = ModelConfig(
                path=draft_path,
                n_gpu_layers=args.gpu_layers_draft,
                n_ctx=args.ctx_size_draft,
                n_batch=args.batch_size,
                n_threads=args.threads if args.threads_draft is None else args.threads_draft,
                weight_repack=args.repack,
            )
        draft = with_rpc_draft(args, draft) if draft is not None else None
    warn_about_threads(args.threads, args.threads_draft if draft is not None else None)
    warn_if_draft_is_target(target_path, draft_path if draft is not None else None)
    return target, draft


def check_model_files(
    args: argparse.Namespace, target: ModelConfig, draft: ModelConfig | None
) -> None:
    """The headers of the pair's model files (the ones the flags name, or the demo
    pair): a file error says which model and what to do, and a context above the one
    the model was trained for (``-c``, ``-cd``) is refused with the numbers, before
    llama.cpp tries to allocate it."""
    check_context(check_model_file(target.path, TARGET_ROLE), args.ctx_size, "-c")
    if draft is not None:
        check_context(check_model_file(draft.path, DRAFT_ROLE), args.ctx_size_draft, "-cd")


def _check_value_flags(args: argparse.Namespace) -> None:
    """Values out of range, named by their flag and value (the core's checks, which
    catch the rest, name the setting)."""
    if args.n_predict < -1:
        raise UsageError(
            f"-n must be -1 (until the model ends its answer) or 0 or more, got {args.n_predict}"
        )
    for flag, value in (
        ("--top-p", args.top_p),
        ("--min-p", args.min_p),
        ("--draft-p-min", args.draft_p_min),
    ):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be between 0 and 1, got {value:g}")
    if args.top_k < 0:
        raise UsageError(f"--top-k must be 0 (off) or more, got {args.top_k}")
    if not args.repeat_penalty > 0:
        raise UsageError(f"--repeat-penalty must be above 0, got {args.repeat_penalty:g}")
    n_max = parse_draft_max(args.draft_max)[0]
    if n_max < 0:
        raise UsageError(f"--draft-max must be 0 or more, or 'auto', got {n_max}")
    if not 0 <= args.draft_min <= n_max:
        raise UsageError(
            f"--draft-min must be between 0 and --draft-max ({n_max}), got {args.draft_min}"
        )
    if "" in args.stop:
        raise UsageError("--stop must not be empty")


def generation_settings(args: argparse.Namespace) -> GenerationSettings:
    """The settings the flags ask for; UsageError (exit code 2) for a bad value."""
    _check_value_flags(args)
    with flag_values():
        return _generation_settings(args)


def _generation_settings(args: argparse.Namespace) -> GenerationSettings:
    return GenerationSettings(
        n_predict=args.n_predict,
        sampling=SamplingSettings(
            temperature=args.temp,
            top_k=args.top_k,
            top_p=args.top_p,
            min_p=args.min_p,
            repeat_penalty=args.repeat_penalty,
            repeat_last_n=args.repeat_last_n,
            seed=args.seed,
            sequence=args.sampling_seq,
        ),
        drafting=DraftSettings(
            source=_draft_source(args),
            n_max=parse_draft_max(args.draft_max)[0],
            n_min=args.draft_min,
            p_min=args.draft_p_min,
            verification=Verification(args.verification),
            adaptive=parse_draft_max(args.draft_max)[1] or args.adaptive_draft,
        ),
        stop_strings=tuple(args.stop),
    )


def run_generate(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    prompt_text = _read_prompt(args)
    settings = generation_settings(args)
    target, draft = model_configs(args)
    check_model_files(args, target, draft)
    with SpeculativeEngine(target, draft) as engine:
        if args.chat:
            messages = [ChatMessage("system", args.system)] if args.system else []
            messages.append(ChatMessage("user", prompt_text))
            prompt = engine.tokenize_chat(messages)
        else:
            prompt = engine.tokenize(prompt_text)

        def print_step(step: StepEvent) -> None:
            for token in step.tokens:
                colour = _COLOURS[token.provenance] if args.color else ""
                out.write(f"{colour}{token.text}{_RESET if colour else ''}")
            out.flush()

        stream = engine.generate(prompt, settings)
        # Ctrl+C from here on ends the answer early but keeps what was produced.
        with sigint_calls(engine.cancel):
            result = collect(stream, None if args.json else print_step)
        hint = _empty_answer_hint(engine, args, result)
    if args.json:
        out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write("\n")
        out.flush()
        err.write("\n" + format_readout(result.stats) + "\n")
        if result.detail:
            err.write(f"stopped: {result.detail}\n")
        if result.stop_reason is StopReason.CANCELLED:
            err.write("interrupted: the answer above is partial\n")
        if hint:
            err.write(f"hint: {hint}\n")
    out.flush()
    return EXIT_INTERRUPTED if result.stop_reason is StopReason.CANCELLED else 0


def _empty_answer_hint(
    engine: SpeculativeEngine, args: argparse.Namespace, result: GenerationResult
) -> str:
    """Why an answer may have ended before it began, when the cause is likely."""
    if (
        result.tokens
        or args.chat
        or result.stop_reason is not StopReason.END_OF_GENERATION
        or not engine.target.metadata.has_chat_template
    ):
        return ""
    return (
        "the model ended its answer at once; it is a chat model, and --chat wraps the "
        "prompt in its chat template"
    )
