"""Generation knobs as typed settings, and GenerationSettings to and from JSON.

The knobs are the ones the draft settings panel shows; each one maps to a field
of ``GenerationSettings`` (or, for threads, to the models' load settings). The
descriptions are the panel's tooltips: what the knob does to speed and acceptance.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from core.engine.config import (
    DraftSettings,
    GenerationSettings,
    SamplingSettings,
    Verification,
    default_threads,
)
from core.errors import ConfigError
from core.settings.schema import Setting

logger = logging.getLogger(__name__)

_DRAFT = DraftSettings()
_SAMPLING = SamplingSettings()
_GENERATION = GenerationSettings()
# The engine splits drafts to fit its batch anyway; beyond this, drafts only waste time.
MAX_DRAFT_TOKENS = 256
MAX_SEED = 2**31 - 1

DRAFT_MAX = Setting(
    "draft_max",
    _DRAFT.n_max,
    "Draft max",
    "Most tokens the draft proposes per step: more gives longer bursts when the draft is "
    "right, but wastes draft time when it is wrong.",
    minimum=0,
    maximum=MAX_DRAFT_TOKENS,
)
DRAFT_MIN = Setting(
    "draft_min",
    _DRAFT.n_min,
    "Draft min",
    "Drafts shorter than this are not verified and the step decodes plainly, which skips "
    "verification batches too short to pay off.",
    minimum=0,
    maximum=MAX_DRAFT_TOKENS,
)
P_MIN = Setting(
    "p_min",
    _DRAFT.p_min,
    "Draft p-min",
    "The draft stops proposing once its confidence falls below this: higher keeps "
    "acceptance up but drafts fewer tokens per step.",
    minimum=0.0,
    maximum=1.0,
)
VERIFICATION = Setting(
    "verification",
    _DRAFT.verification.value,
    "Verification",
    "Speculative sampling keeps the most drafts and samples exactly like the target; "
    "sample-and-match gives the same answer for a seed with or without drafting but "
    "accepts less at high temperature.",
    choices=tuple(mode.value for mode in Verification),
)
ADAPTIVE = Setting(
    "adaptive",
    _DRAFT.adaptive,
    "Adaptive draft length",
    "Picks each step's draft length up to draft max from measured timings and pauses "
    "drafting while speculation is slower than plain decoding; off always drafts up to "
    "draft max.",
)
TEMPERATURE = Setting(
    "temperature",
    _SAMPLING.temperature,
    "Temperature",
    "Randomness of the target's choice: 0 is greedy, where acceptance is highest; higher "
    "values match the draft less often and lower acceptance.",
    minimum=0.0,
    maximum=5.0,
)
TOP_K = Setting(
    "top_k",
    _SAMPLING.top_k,
    "Top-k",
    "Sample only among the k likeliest tokens (0: all); a smaller k makes the target more "
    "predictable and raises acceptance.",
    minimum=0,
    maximum=100_000,
)
TOP_P = Setting(
    "top_p",
    _SAMPLING.top_p,
    "Top-p",
    "Sample from the smallest set of tokens whose probabilities add up to p; lower is more "
    "predictable and raises acceptance.",
    minimum=0.0,
    maximum=1.0,
)
MIN_P = Setting(
    "min_p",
    _SAMPLING.min_p,
    "Min-p",
    "Drop tokens less likely than this fraction of the likeliest one; higher is more "
    "predictable and raises acceptance.",
    minimum=0.0,
    maximum=1.0,
)
REPEAT_PENALTY = Setting(
    "repeat_penalty",
    _SAMPLING.repeat_penalty,
    "Repeat penalty",
    "Makes recently used tokens less likely (1: off); the draft proposes without it, so "
    "values above 1 can lower acceptance.",
    minimum=0.05,
    maximum=5.0,
)
SEED = Setting(
    "seed",
    _SAMPLING.seed,
    "Seed",
    "Random seed for sampling (-1: a new one per answer); a fixed seed repeats an answer "
    "and does not change speed.",
    minimum=-1,
    maximum=MAX_SEED,
)
N_PREDICT = Setting(
    "n_predict",
    _GENERATION.n_predict,
    "Max answer length",
    "Most tokens in one answer; it bounds how long an answer takes, not its speed or acceptance.",
    minimum=1,
    maximum=1 << 20,
)
THREADS = Setting(
    "threads",
    default_threads(),
    "Threads",
    "CPU threads for both models: more helps up to the number of physical cores, then "
    "slows down; it takes effect at the next load.",
    minimum=1,
    maximum=1024,
)

# Knob key -> (GenerationSettings field, nested field or None).
_FIELD_PATHS: dict[str, tuple[str, str | None]] = {
    DRAFT_MAX.key: ("drafting", "n_max"),
    DRAFT_MIN.key: ("drafting", "n_min"),
    P_MIN.key: ("drafting", "p_min"),
    TEMPERATURE.key: ("sampling", "temperature"),
    TOP_K.key: ("sampling", "top_k"),
    TOP_P.key: ("sampling", "top_p"),
    MIN_P.key: ("sampling", "min_p"),
    REPEAT_PENALTY.key: ("sampling", "repeat_penalty"),
    SEED.key: ("sampling", "seed"),
    N_PREDICT.key: ("n_predict", None),
}

DRAFTING_KNOBS: tuple[Setting[int] | Setting[float], ...] = (DRAFT_MAX, DRAFT_MIN, P_MIN)
# The drafting modes: a choice and a switch rather than numbers; in DraftSettings too.
DRAFTING_MODES: tuple[Setting[str] | Setting[bool], ...] = (VERIFICATION, ADAPTIVE)
SAMPLING_KNOBS: tuple[Setting[int] | Setting[float], ...] = (
    TEMPERATURE,
    TOP_K,
    TOP_P,
    MIN_P,
    REPEAT_PENALTY,
    SEED,
)
# Knobs that live in GenerationSettings, i.e. apply to the next answer without a reload.
GENERATION_KNOBS: tuple[Setting[int] | Setting[float], ...] = (
    *DRAFTING_KNOBS,
    *SAMPLING_KNOBS,
    N_PREDICT,
)
_KNOBS_BY_KEY = {knob.key: knob for knob in GENERATION_KNOBS}


def knob_value(settings: GenerationSettings, key: str) -> int | float:
    """The current value of one generation knob."""
    outer, inner = _FIELD_PATHS[key]
    value = getattr(settings, outer)
    return getattr(value, inner) if inner else value


def with_knobs(
    settings: GenerationSettings, values: Mapping[str, int | float]
) -> GenerationSettings:
    """``settings`` with several knobs changed at once.

    Changes to one nested group (e.g. draft-max and draft-min) are applied together,
    so a consistent set of values never trips over an intermediate state. Raises
    ConfigError if a value or the result is invalid.
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        checked = _KNOBS_BY_KEY[key].validate(value)
        outer, inner = _FIELD_PATHS[key]
        if inner is None:
            top[outer] = checked
        else:
            nested.setdefault(outer, {})[inner] = checked
    for outer, changes in nested.items():
        # replace() runs the nested dataclass's own checks, e.g. draft-min <= draft-max.
        top[outer] = replace(getattr(settings, outer), **changes)
    return replace(settings, **top)


def with_knob(settings: GenerationSettings, key: str, value: int | float) -> GenerationSettings:
    """``settings`` with one knob changed; ConfigError if the value or the result is invalid."""
    return with_knobs(settings, {key: value})


def _known_fields(cls: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected an object, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    # Fields written by a newer or older version are skipped rather than fatal.
    return {key: value for key, value in data.items() if key in names}


def _json_ready(value: Any) -> Any:
    # Enums (the draft source, and any mode a later version adds) are saved by value.
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def generation_settings_to_dict(settings: GenerationSettings) -> dict[str, Any]:
    """A JSON-ready dict of every field, nested like the dataclasses."""
    data: dict[str, Any] = _json_ready(settings.to_dict())
    return data


def generation_settings_from_dict(data: Any) -> GenerationSettings:
    """Rebuild GenerationSettings; missing fields take defaults, invalid ones raise ConfigError."""
    fields = _known_fields(GenerationSettings, data)
    try:
        if "sampling" in fields:
            fields["sampling"] = SamplingSettings(
                **_known_fields(SamplingSettings, fields["sampling"])
            )
        if "drafting" in fields:
            fields["drafting"] = DraftSettings(**_known_fields(DraftSettings, fields["drafting"]))
        if "stop_strings" in fields:
            fields["stop_strings"] = tuple(str(text) for text in fields["stop_strings"])
        settings = GenerationSettings(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid generation settings: {exc}") from exc
    # The dataclasses check ranges but not types; the knob schema checks both.
    for key in _FIELD_PATHS:
        _KNOBS_BY_KEY[key].validate(knob_value(settings, key))
    ADAPTIVE.validate(settings.drafting.adaptive)
    return settings


def with_drafting_mode(
    settings: GenerationSettings, *, verification: str | None = None, adaptive: bool | None = None
) -> GenerationSettings:
    """``settings`` with the verification and/or the adaptive draft length changed."""
    changes: dict[str, Any] = {}
    if verification is not None:
        changes["verification"] = Verification(VERIFICATION.validate(verification))
    if adaptive is not None:
        changes["adaptive"] = ADAPTIVE.validate(adaptive)
    return replace(settings, drafting=replace(settings.drafting, **changes))


@dataclass(frozen=True)
class PairSettings:
    """What the user tuned for one model pair."""

    generation: GenerationSettings = field(default_factory=GenerationSettings)
    n_threads: int = THREADS.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": generation_settings_to_dict(self.generation),
            THREADS.key: self.n_threads,
        }

    @classmethod
    def from_dict(cls, data: Any) -> PairSettings:
        if not isinstance(data, dict):
            raise ConfigError(f"pair settings: expected an object, got {data!r}")
        generation = generation_settings_from_dict(data.get("generation", {}))
        n_threads = THREADS.validate(data.get(THREADS.key, THREADS.default))
        return cls(generation, n_threads)
