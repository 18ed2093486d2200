"""One engine, one queue: answers from the window and the server take turns.

The engine process runs one command at a time, but a window answer and an API
request sent together would still interleave their tokenize and generate calls,
and the window's Stop (``EngineWorker.cancel``) would stop the API's answer too.
``GenerationQueue`` hands out turns in arrival order; a turn's ``generate`` and
``cancel`` touch only that turn's answer.

Waiting is bounded for callers that ask for it (the server answers 503 when the
queue is full); the window's own turns are never refused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

from core.engine import Event, GenerationSettings
from core.errors import EngineError, SpecChatError
from core.worker.client import EngineWorker

DEFAULT_MAX_WAITING = 8


class QueueFullError(SpecChatError):
    """Too many requests are already waiting for the engine; try again shortly."""

    def __init__(self, message: str, waiting: int) -> None:
        super().__init__(message)
        self.waiting = waiting


class Turn:
    """One caller's exclusive use of the engine, from ``async with`` to its end.

    Entering waits until every earlier turn has ended. ``cancel()`` may be called
    at any time from the loop: while waiting (the turn then starts and its answer
    is cancelled at once, so the caller still gets a CANCELLED FinishedEvent) or
    while generating.
    """

    def __init__(self, queue: GenerationQueue, owner: str) -> None:
        self._queue = queue
        self.owner = owner
        self._granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._call_id: int | None = None
        self._worker: EngineWorker | None = None
        self._late_cancel: asyncio.Task[None] | None = None
        self.cancelled = False

    @property
    def worker(self) -> EngineWorker:
        if self._worker is None:
            raise EngineError("no model pair is loaded; load one first")
        return self._worker

    async def begin(self) -> Turn:
        """Wait until this turn starts; cancelled while waiting, it leaves the queue."""
        try:
            await self._granted
        except BaseException:
            self._queue._leave(self)
            raise
        self._worker = self._queue.worker()
        return self

    async def __aenter__(self) -> Turn:
        return await self.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Give the place up (entered or not); the next turn starts. Idempotent."""
        self._queue._leave(self)

    async def generate(
        self, prompt: Sequence[int], settings: GenerationSettings
    ) -> AsyncIterator[Event]:
        """The worker's ``generate`` for this turn; leaving early cancels the answer."""
        worker = self.worker
        async for event in worker.generate(prompt, settings, on_call=self._started):
            yield event

    def _started(self, call_id: int) -> None:
        self._call_id = call_id
        if self.cancelled and self._worker is not None:
            # Held, so the task cannot be garbage-collected before it runs.
            self._late_cancel = asyncio.get_running_loop().create_task(
                self._worker.cancel_call(call_id)
            )

    async def cancel(self) -> None:
        """Stop this turn's answer (or the one it is about to start); no other."""
        self.cancelled = True
        if self._worker is not None and self._call_id is not None:
            await self._worker.cancel_call(self._call_id)


class GenerationQueue:
    """FIFO turns on the engine worker that ``worker()`` returns at each turn's start.

    Args:
        worker: returns the current EngineWorker (or None when none is running).
        max_waiting: most bounded turns allowed to wait behind the running one.
    """

    def __init__(
        self,
        worker: Callable[[], EngineWorker | None],
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        self._worker = worker
        self.max_waiting = max_waiting
        self._turns: deque[Turn] = deque()

    def worker(self) -> EngineWorker | None:
        return self._worker()

    @property
    def waiting(self) -> int:
        """Turns waiting behind the one that holds the engine."""
        return max(0, len(self._turns) - 1)

    @property
    def busy(self) -> bool:
        return bool(self._turns)

    def turn(self, owner: str = "", *, bounded: bool = True) -> Turn:
        """A place in the queue, taken now; use it with ``async with``.

        Raises:
            QueueFullError: ``bounded`` and ``max_waiting`` turns already wait.
        """
        if bounded and self.busy and self.waiting >= self.max_waiting:
            waiting = (
                f"{self.waiting} requests are already waiting"
                if self.waiting
                else "another answer is running and no request may wait"
            )
            raise QueueFullError(f"{waiting} for the engine; try again shortly", self.waiting)
        turn = Turn(self, owner)
        self._turns.append(turn)
        if len(self._turns) == 1:
            turn._granted.set_result(None)
        return turn

    def _leave(self, turn: Turn) -> None:
        was_first = bool(self._turns) and self._turns[0] is turn
        if turn in self._turns:
            self._turns.remove(turn)
        if was_first and self._turns:
            following = self._turns[0]
            if not following._granted.done():
                following._granted.set_result(None)
