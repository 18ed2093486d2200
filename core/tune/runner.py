"""What the tuner runs answers on: the engine in this process, or the engine worker.

Both give the same two calls, so A/B, sweeps and calibration are written once.
The command line drives a ``SpeculativeEngine`` directly; the window drives its
``EngineWorker`` (the engine process), awaiting one answer at a time so the
window's chat and the local server queue on the same engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.engine import (
    ChatMessage,
    FinishedEvent,
    GenerationResult,
    GenerationSettings,
    SpeculativeEngine,
    StepEvent,
    collect,
)
from core.worker.client import EngineWorker


class AnswerRunner(Protocol):
    """Tokenizes conversations and produces whole answers."""

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]: ...

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult: ...

    async def cancel(self) -> None: ...


class EngineRunner:
    """A ``SpeculativeEngine`` in this process (the command line).

    The calls block the event loop while an answer decodes; a command line has
    nothing else to do meanwhile. Each answer starts from empty caches, so every
    run of a sweep pays the same prompt processing.
    """

    def __init__(self, engine: SpeculativeEngine) -> None:
        self.engine = engine

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.engine.tokenize_chat(list(messages))

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        self.engine.target.reset()
        if self.engine.draft is not None:
            self.engine.draft.reset()
        return collect(self.engine.generate(prompt, settings))

    async def cancel(self) -> None:
        self.engine.cancel()


class WorkerRunner:
    """The engine process behind an ``EngineWorker`` (the window)."""

    def __init__(self, worker: EngineWorker) -> None:
        self.worker = worker

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        return await self.worker.tokenize_chat(messages)

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        events: list[StepEvent | FinishedEvent] = []
        async for event in self.worker.generate(prompt, settings):
            events.append(event)
        return collect(events)

    async def cancel(self) -> None:
        await self.worker.cancel()
