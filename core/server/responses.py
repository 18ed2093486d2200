"""Response bodies in OpenAI's shapes, and server-sent events.

Streamed answers send one chunk per engine step (all the step's tokens at once),
then a closing chunk with ``finish_reason`` and the ``timings``, an optional usage
chunk (``stream_options.include_usage``) and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.engine import FinishedEvent, StopReason
from core.server.request_parsing import Endpoint
from core.server.timings import timings, usage

DONE = b"data: [DONE]\n\n"

_FINISH_REASONS = {
    StopReason.END_OF_GENERATION: "stop",
    StopReason.STOP_STRING: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_FULL: "length",
    StopReason.CANCELLED: "stop",
}


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n"


def finish_reason(finished: FinishedEvent) -> str:
    return _FINISH_REASONS[finished.stop_reason]


@dataclass(frozen=True)
class AnswerHeader:
    """What every body of one answer repeats: id, kind, creation time, model."""

    endpoint: Endpoint
    model: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def _base(self, object_name: str) -> dict[str, Any]:
        prefix = "chatcmpl-" if self.endpoint is Endpoint.CHAT else "cmpl-"
        return {
            "id": prefix + self.id,
            "object": object_name,
            "created": self.created,
            "model": self.model,
        }

    def _choice(self, text: str | None, reason: str | None, *, delta: bool) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
        if self.endpoint is Endpoint.COMPLETION:
            choice["text"] = text or ""
        elif delta:
            choice["delta"] = {} if text is None else {"content": text}
        else:
            choice["message"] = {"role": "assistant", "content": text or ""}
        return choice

    def complete(self, text: str, finished: FinishedEvent) -> dict[str, Any]:
        """The whole answer (non-streaming)."""
        kind = "chat.completion" if self.endpoint is Endpoint.CHAT else "text_completion"
        return {
            **self._base(kind),
            "choices": [self._choice(text, finish_reason(finished), delta=False)],
            "usage": usage(finished.stats),
            "timings": timings(finished.stats),
        }

    @property
    def _chunk_kind(self) -> str:
        return "chat.completion.chunk" if self.endpoint is Endpoint.CHAT else "text_completion"

    def first_chunk(self) -> dict[str, Any] | None:
        """Chat streams open with the assistant's role, as OpenAI's do."""
        if self.endpoint is not Endpoint.CHAT:
            return None
        chunk = {**self._base(self._chunk_kind), "choices": [self._choice("", None, delta=True)]}
        chunk["choices"][0]["delta"]["role"] = "assistant"
        return chunk

    def text_chunk(self, text: str) -> dict[str, Any]:
        return {**self._base(self._chunk_kind), "choices": [self._choice(text, None, delta=True)]}

    def last_chunk(self, finished: FinishedEvent) -> dict[str, Any]:
        reason = finish_reason(finished)
        return {
            **self._base(self._chunk_kind),
            "choices": [self._choice(None, reason, delta=True)],
            "timings": timings(finished.stats),
        }

    def usage_chunk(self, finished: FinishedEvent) -> dict[str, Any]:
        return {**self._base(self._chunk_kind), "choices": [], "usage": usage(finished.stats)}
