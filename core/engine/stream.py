"""The iterator ``SpeculativeEngine.generate()`` returns."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator, Iterator

from core.engine.events import Event, FinishedEvent
from core.engine.lifecycle import NativeGuard


class AnswerStream(Iterator[Event]):
    """The events of one answer: ``StepEvent`` objects, then one ``FinishedEvent``.

    ``generate()`` validates and claims the engine when it is called; the stream
    gives the engine back as soon as the answer is over: when it returns the
    FinishedEvent, when the answer raises, on ``close()``, or when the stream is
    garbage-collected unfinished. One thread iterates a stream; ``cancel()`` and
    ``close()`` on the engine are for the other threads.
    """

    def __init__(
        self,
        events: Generator[Event, None, None],
        guard: NativeGuard,
        release: Callable[[], None],
    ) -> None:
        self._events = events
        self._guard = guard
        # Holds ``release`` (which references the engine), never the stream itself.
        self._release = weakref.finalize(self, release)
        self._release.atexit = False

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> Event:
        if not self._release.alive:
            raise StopIteration
        try:
            # One step: close() from another thread waits for it to end.
            with self._guard.answer_step():
                event = next(self._events)
        except BaseException:
            self.close()
            raise
        if isinstance(event, FinishedEvent):
            self.close()
        return event

    def close(self) -> None:
        """Abandon the answer if it is still running and free the engine for the next."""
        self._events.close()
        self._release()
