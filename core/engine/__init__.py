"""Speculative decoding on llama.cpp: models, drafting, verification, events."""

from core.engine.chat_template import ChatMessage
from core.engine.config import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    Verification,
)
from core.engine.engine import SpeculativeEngine
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
