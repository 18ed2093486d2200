"""What the engine streams while it generates: plain, serialisable data.

The window runs the engine in another process and the local server streams the
same events, so every event turns into a dict of JSON types and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Provenance(StrEnum):
    """Where an emitted token came from."""

    DRAFT_ACCEPTED = "draft_accepted"
    TARGET_CORRECTION = "target_correction"  # target's token where a draft was rejected
    TARGET_BONUS = "target_bonus"  # target's extra token after every draft was accepted
    TARGET_ONLY = "target_only"  # no draft this step


class StopReason(StrEnum):
    END_OF_GENERATION = "eos"
    MAX_TOKENS = "n_predict"
    STOP_STRING = "stop_string"
    CONTEXT_FULL = "context_full"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class EmittedToken:
    """One token the user receives.

    ``draft_probability`` is the draft model's probability of this token when the
    draft proposed it (``draft_accepted``), else None; the window shows it on hover.
    """

    id: int
    text: str
    provenance: Provenance
    draft_probability: float | None = None


@dataclass(frozen=True)
class RejectedToken:
    """A drafted token the target threw away, with the draft's probability of it."""

    id: int
    text: str
    draft_probability: float | None = None


@dataclass(frozen=True)
class StepEvent:
    """One draft/verify step: the tokens it emitted and the drafts it threw away."""

    tokens: tuple[EmittedToken, ...]
    rejected: tuple[RejectedToken, ...]
    n_drafted: int
    n_accepted: int
    draft_ms: float
    verify_ms: float
    type: str = field(default="step", init=False)

    @property
    def text(self) -> str:
        return "".join(token.text for token in self.tokens)


@dataclass(frozen=True)
class GenerationStats:
    """Totals of one answer; the fields llama.cpp's readout prints and more.

    ``acceptance`` is n_accept / n_drafted over verified drafts only.
    ``mean_accepted_length`` is the mean number of draft tokens accepted per step
    that verified a draft; ``tokens_per_step`` is emitted tokens per target pass.
    """

    n_prompt: int
    n_prompt_reused: int
    prompt_ms: float
    n_predict: int
    decode_ms: float
    ttft_ms: float
    n_steps: int
    n_drafted: int
    n_accept: int
    draft_ms: float
    verify_ms: float
    accepted_length_histogram: tuple[int, ...]
    draft_source: str
    draft_max: int
    seed: int

    @property
    def prompt_tokens_per_second(self) -> float:
        evaluated = self.n_prompt - self.n_prompt_reused
        return evaluated / (self.prompt_ms / 1000) if self.prompt_ms > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        return self.n_predict / (self.decode_ms / 1000) if self.decode_ms > 0 else 0.0

    @property
    def acceptance(self) -> float:
        return self.n_accept / self.n_drafted if self.n_drafted else 0.0

    @property
    def steps_with_draft(self) -> int:
        """Steps that verified a draft (the histogram counts each once)."""
        return sum(self.accepted_length_histogram)

    @property
    def mean_accepted_length(self) -> float:
        steps = self.steps_with_draft
        if not steps:
            return 0.0
        total = sum(length * count for length, count in enumerate(self.accepted_length_histogram))
        return total / steps

    @property
    def tokens_per_step(self) -> float:
        return self.n_predict / self.n_steps if self.n_steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accepted_length_histogram"] = list(self.accepted_length_histogram)
        for name in (
            "prompt_tokens_per_second",
            "decode_tokens_per_second",
            "acceptance",
            "mean_accepted_length",
            "tokens_per_step",
        ):
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationStats:
        fields = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in fields}
        values["accepted_length_histogram"] = tuple(values["accepted_length_histogram"])
        return cls(**values)


@dataclass(frozen=True)
class FinishedEvent:
    """The answer is complete (or stopped); carries the totals."""

    stop_reason: StopReason
    stats: GenerationStats
    detail: str = ""
    type: str = field(default="finished", init=False)


Event = StepEvent | FinishedEvent


def event_to_dict(event: Event) -> dict[str, Any]:
    if isinstance(event, StepEvent):
        return {
            "type": "step",
            "tokens": [
                [t.id, t.text, t.provenance.value, t.draft_probability] for t in event.tokens
            ],
            "rejected": [[t.id, t.text, t.draft_probability] for t in event.rejected],
            "n_drafted": event.n_drafted,
            "n_accepted": event.n_accepted,
            "draft_ms": event.draft_ms,
            "verify_ms": event.verify_ms,
        }
    return {
        "type": "finished",
        "stop_reason": event.stop_reason.value,
        "detail": event.detail,
        "stats": event.stats.to_dict(),
    }


def event_from_dict(data: dict[str, Any]) -> Event:
    if data["type"] == "step":
        return StepEvent(
            tokens=tuple(
                EmittedToken(i, s, Provenance(p), *rest) for i, s, p, *rest in data["tokens"]
            ),
            rejected=tuple(RejectedToken(i, s, *rest) for i, s, *rest in data["rejected"]),
            n_drafted=data["n_drafted"],
            n_accepted=data["n_accepted"],
            draft_ms=data["draft_ms"],
            verify_ms=data["verify_ms"],
        )
    if data["type"] == "finished":
        return FinishedEvent(
            stop_reason=StopReason(data["stop_reason"]),
            stats=GenerationStats.from_dict(data["stats"]),
            detail=data.get("detail", ""),
        )
    raise ValueError(f"unknown event type {data['type']!r}")
