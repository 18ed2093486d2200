"""Speculative decoding on llama.cpp: models, drafting, verification, events.

``SpeculativeEngine`` is imported on first use: it loads numpy and llama.cpp's
bindings, which the window process never needs (its engine runs in the worker
process), and the window's module imports the light names below on its way up.
"""

from typing import TYPE_CHECKING, Any

from core.engine.chat_template import ChatMessage
from core.engine.config import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    Verification,
)
from core.engine.events import (
    EmittedToken,
    Event,
    FinishedEvent,
    GenerationStats,
    Provenance,
    RejectedToken,
    StepEvent,
    StopReason,
    event_from_dict,
    event_to_dict,
)
from core.engine.result import GenerationResult, collect
from core.engine.stream import AnswerStream

if TYPE_CHECKING:
    from core.engine.engine import SpeculativeEngine


def __getattr__(name: str) -> Any:
    if name == "SpeculativeEngine":
        from core.engine.engine import SpeculativeEngine

        return SpeculativeEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnswerStream",
    "ChatMessage",
    "DraftSettings",
    "DraftSource",
    "EmittedToken",
    "Event",
    "FinishedEvent",
    "GenerationResult",
    "GenerationSettings",
    "GenerationStats",
    "ModelConfig",
    "Provenance",
    "RejectedToken",
    "SamplingSettings",
    "SpeculativeEngine",
    "StepEvent",
    "StopReason",
    "Verification",
    "collect",
    "event_from_dict",
    "event_to_dict",
]
