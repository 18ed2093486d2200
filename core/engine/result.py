"""Gathers a stream of events into one finished answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.engine.events import (
    EmittedToken,
    Event,
    FinishedEvent,
    GenerationStats,
    RejectedToken,
    StepEvent,
    StopReason,
)


@dataclass(frozen=True)
class GenerationResult:
    tokens: tuple[EmittedToken, ...]
    rejected: tuple[RejectedToken, ...]
    stop_reason: StopReason
    stats: GenerationStats
    detail: str = ""

    @property
    def token_ids(self) -> list[int]:
        return [token.id for token in self.tokens]

    @property
    def text(self) -> str:
        return "".join(token.text for token in self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ids, text, one provenance per token, stats."""
        return {
            "tokens": self.token_ids,
            "text": self.text,
            "provenance": [token.provenance.value for token in self.tokens],
            "token_texts": [token.text for token in self.tokens],
            "rejected": [token.id for token in self.rejected],
            "stop_reason": self.stop_reason.value,
            "detail": self.detail,
            "stats": self.stats.to_dict(),
        }


def collect(
    events: Iterable[Event], on_step: Callable[[StepEvent], None] | None = None
) -> GenerationResult:
    """Drain ``events``; ``on_step`` sees each step as it arrives (for live output)."""
    tokens: list[EmittedToken] = []
    rejected: list[RejectedToken] = []
    finished: FinishedEvent | None = None
    for event in events:
        if isinstance(event, StepEvent):
            tokens.extend(event.tokens)
            rejected.extend(event.rejected)
            if on_step is not None:
                on_step(event)
        else:
            finished = event
    if finished is None:
        raise RuntimeError("event stream ended without a FinishedEvent")
    return GenerationResult(
        tuple(tokens), tuple(rejected), finished.stop_reason, finished.stats, finished.detail
    )
