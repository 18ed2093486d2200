"""Made-up answers for the store and chat tests: step and finished-event dicts."""

from __future__ import annotations

from typing import Any

from core.engine.events import (
    EmittedToken,
    FinishedEvent,
    GenerationStats,
    Provenance,
    RejectedToken,
    StepEvent,
    StopReason,
    event_to_dict,
)

SETTINGS = {"n_predict": 64, "sampling": {"temperature": 0.0}, "drafting": {"draft_max": 4}}
# As the window stores it: dataclasses.asdict(PairInfo).
MODEL_PAIR = {
    "target_path": "/models/SmolLM2-360M-Instruct-Q8_0.gguf",
    "draft_path": "/models/SmolLM2-135M-Instruct-Q8_0.gguf",
    "n_ctx": 4096,
    "has_chat_template": True,
    "backend": "CPU",
    "device": "Intel Xeon",
    "target_gpu_layers": 0,
    "draft_gpu_layers": 0,
}


def step(
    *texts: str,
    provenance: Provenance = Provenance.DRAFT_ACCEPTED,
    rejected: tuple[str, ...] = (),
    last: Provenance | None = None,
) -> dict[str, Any]:
    """A step dict emitting ``texts``: all with ``provenance``, the last one with ``last``."""
    provenances = [provenance] * len(texts)
    if last is not None and texts:
        provenances[-1] = last
    tokens = tuple(
        EmittedToken(
            id=100 + index,
            text=text,
            provenance=kind,
            draft_probability=0.75 if kind == Provenance.DRAFT_ACCEPTED else None,
        )
        for index, (text, kind) in enumerate(zip(texts, provenances, strict=True))
    )
    drafted = sum(kind == Provenance.DRAFT_ACCEPTED for kind in provenances) + len(rejected)
    return event_to_dict(
        StepEvent(
            tokens=tokens,
            rejected=tuple(RejectedToken(7, text, 0.25) for text in rejected),
            n_drafted=drafted,
            n_accepted=drafted - len(rejected),
            draft_ms=1.5,
            verify_ms=4.0,
        )
    )


def finished(
    n_predict: int = 10,
    n_drafted: int = 8,
    n_accept: int = 6,
    stop_reason: StopReason = StopReason.END_OF_GENERATION,
) -> dict[str, Any]:
    stats = GenerationStats(
        n_prompt=20,
        n_prompt_reused=0,
        prompt_ms=50.0,
        n_predict=n_predict,
        decode_ms=250.0,
        ttft_ms=60.0,
        n_steps=4,
        n_drafted=n_drafted,
        n_accept=n_accept,
        draft_ms=40.0,
        verify_ms=200.0,
        accepted_length_histogram=(1, 1, 2),
        draft_source="draft_model",
        draft_max=4,
        seed=1,
    )
    return event_to_dict(FinishedEvent(stop_reason=stop_reason, stats=stats))
