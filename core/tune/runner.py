"""What the tuner runs answers on: the engine in this process, or the engine worker.

Both give the same two calls, so A/B, sweeps and calibration are written once.
The command line drives a ``SpeculativeEngine`` directly; the window drives its
engine process through the generation queue it shares with the window's chat and
the local server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from core.engine import (
    ChatMessage,
    FinishedEvent,
    GenerationResult,
    GenerationSettings,
    StepEvent,
    collect,
)
from core.errors import EngineError
from core.tune.cost_curve import (
    DEFAULT_CONTEXT,
    DEFAULT_MAX_K,
    DEFAULT_REPEATS,
    CostCurve,
    measure_pair_curve,
)
from core.worker.generation_queue import GenerationQueue, Turn

if TYPE_CHECKING:
    # Only the command line's runner holds an engine; the window's loads no llama.cpp.
    from core.engine import SpeculativeEngine


class AnswerRunner(Protocol):
    """Tokenizes conversations and produces whole answers."""

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]: ...

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult: ...

    async def cancel(self) -> None: ...

    async def measure_cost_curve(
        self,
        max_k: int = DEFAULT_MAX_K,
        repeats: int = DEFAULT_REPEATS,
        context: int = DEFAULT_CONTEXT,
    ) -> CostCurve:
        """The loaded pair's verification cost curve (core/tune/cost_curve.py)."""
        ...

    async def placement(self) -> str:
        """Where the loaded pair computes (core/engine/placement.py)."""
        ...


class EngineRunner:
    """A ``SpeculativeEngine`` in this process (the command line).

    The calls block the event loop while an answer decodes; a command line has
    nothing else to do meanwhile. Each answer starts from empty caches, so every
    run of a sweep pays the same prompt processing. ``on_step`` sees every step of
    every answer (a benchmark logs what each cell drafted).
    """

    def __init__(
        self, engine: SpeculativeEngine, on_step: Callable[[StepEvent], None] | None = None
    ) -> None:
        self.engine = engine
        self.on_step = on_step

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.engine.tokenize_chat(list(messages))

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        self.engine.target.reset()
        if self.engine.draft is not None:
            self.engine.draft.reset()
        return collect(self.engine.generate(prompt, settings), on_step=self.on_step)

    async def cancel(self) -> None:
        self.engine.cancel()

    async def measure_cost_curve(
        self,
        max_k: int = DEFAULT_MAX_K,
        repeats: int = DEFAULT_REPEATS,
        context: int = DEFAULT_CONTEXT,
    ) -> CostCurve:
        return measure_pair_curve(self.engine, max_k, repeats, context)

    async def placement(self) -> str:
        # Here, not at the top: the window imports this module and must not load
        # llama.cpp (only the engine process measures).
        from core.engine.placement import pair_placement

        return pair_placement(self.engine.target, self.engine.draft)


class WorkerRunner:
    """The engine process (the window): each answer takes a turn on the window's
    generation queue, so a tuning run never interleaves with a chat answer or an API
    request, and cancelling stops only the tuner's own answer."""

    def __init__(self, queue: GenerationQueue) -> None:
        self.queue = queue
        self._turn: Turn | None = None

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        worker = self.queue.worker()
        if worker is None:
            raise EngineError("no model pair is loaded; load one first")
        return await worker.tokenize_chat(messages)

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        events: list[StepEvent | FinishedEvent] = []
        turn = self.queue.turn("tune", bounded=False)
        self._turn = turn
        try:
            async with turn:
                async for event in turn.generate(prompt, settings):
                    events.append(event)
        finally:
            self._turn = None
        return collect(events)

    async def measure_cost_curve(
        self,
        max_k: int = DEFAULT_MAX_K,
        repeats: int = DEFAULT_REPEATS,
        context: int = DEFAULT_CONTEXT,
    ) -> CostCurve:
        # A turn of its own: the timing must not share the engine with a chat answer.
        async with self.queue.turn("tune", bounded=False) as turn:
            return await turn.worker.cost_curve(max_k, repeats, context)

    async def placement(self) -> str:
        worker = self.queue.worker()
        pair = worker.pair_info if worker is not None else None
        if pair is None:
            raise EngineError("no model pair is loaded; load one first")
        return pair.placement

    async def cancel(self) -> None:
        if self._turn is not None:
            await self._turn.cancel()
