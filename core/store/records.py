"""What the store hands out: plain, immutable records of conversations and messages.

Times are seconds since the epoch (``time.time()``), so they sort and subtract
directly and any UI can format them in the user's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["user", "assistant"]
# One streamed step as stored: (event_to_dict(StepEvent), seconds since the answer began).
StoredStep = tuple[dict[str, Any], float]


@dataclass(frozen=True)
class StoredMessage:
    """One turn. Only assistant messages carry steps, settings, model pair and finish.

    ``finished`` is ``event_to_dict(FinishedEvent)``; None while the answer streams
    or when it never finished (the worker or the window died). ``interrupted``
    marks an answer that stopped before the engine said it was done.
    """

    id: int
    role: Role
    text: str
    created_at: float
    steps: list[StoredStep]
    finished: dict[str, Any] | None
    interrupted: bool
    settings: dict[str, Any] | None
    model_pair: dict[str, Any] | None


@dataclass(frozen=True)
class ConversationHeader:
    """A conversation without its messages: cheap to read for a title or system prompt."""

    id: int
    title: str
    system_prompt: str
    created_at: float
    updated_at: float
    deleted_at: float | None


@dataclass(frozen=True)
class Conversation(ConversationHeader):
    messages: list[StoredMessage]


@dataclass(frozen=True)
class ConversationSummary:
    """A row of the conversations list.

    ``preview`` is the start of the last message, or, when searching, the text
    around the first match in a message.
    """

    id: int
    title: str
    created_at: float
    updated_at: float
    preview: str
    message_count: int
