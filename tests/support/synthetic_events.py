"""Made-up engine events for tests that feed views and readouts without a model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.engine.events import EmittedToken, GenerationStats, Provenance, RejectedToken, StepEvent


def synthetic_step(
    tokens: list[tuple[str, Provenance]],
    rejected: tuple[str, ...] = (),
    accepted_confidence: float = 0.9,
    rejected_confidence: float = 0.4,
) -> StepEvent:
    """One step emitting ``tokens``; its ``rejected`` drafts were proposed before the last."""
    drafted = sum(p is Provenance.DRAFT_ACCEPTED for _, p in tokens) + len(rejected)
    return StepEvent(
        tokens=tuple(
            EmittedToken(
                i,
                text,
                provenance,
                accepted_confidence if provenance is Provenance.DRAFT_ACCEPTED else None,
            )
            for i, (text, provenance) in enumerate(tokens)
        ),
        rejected=tuple(
            RejectedToken(100 + i, text, rejected_confidence) for i, text in enumerate(rejected)
        ),
        n_drafted=drafted,
        n_accepted=drafted - len(rejected),
        draft_ms=1.0,
        verify_ms=2.0,
    )


def synthetic_stats(n_predict: int, **changes: Any) -> GenerationStats:
    """An answer's totals for ``n_predict`` tokens; ``changes`` override any field."""
    stats = GenerationStats(
        n_prompt=5,
        n_prompt_reused=0,
        prompt_ms=10.0,
        n_predict=n_predict,
        decode_ms=100.0,
        ttft_ms=12.0,
        n_steps=2,
        n_drafted=3,
        n_accept=2,
        draft_ms=2.0,
        verify_ms=4.0,
        accepted_length_histogram=(0, 1, 1),
        draft_source="model",
        draft_max=4,
        seed=1,
    )
    return replace(stats, **changes)
