"""Keeps an engine's native memory alive while any thread uses it.

The worker and the server call the engine from several threads: one streams an
answer, others tokenize, cancel or close. Freeing a llama.cpp model under a
running call kills the process, so every call that reaches native code is counted
here and ``close()`` waits for the running ones and refuses new ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from core.errors import EngineClosedError

CLOSED_MESSAGE = "the engine is closed; load the models again to go on"


class NativeGuard:
    """Counts calls that use native memory; ``close()`` frees it once they end."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls = 0
        self._closing = False
        self._freed = False

    @property
    def closed(self) -> bool:
        return self._closing

    def use(self) -> _Use:
        """A ``with`` block for a call on the models; raises EngineClosedError once
        the engine is closing."""
        return _Use(self, answer_step=False)

    def answer_step(self) -> _Use:
        """A ``with`` block for one step of a streaming answer.

        Unlike ``use()`` it does not raise once the engine is closed: it waits until
        the models are freed and lets the step run uncounted. ``close()`` cancels the
        answer first, so that step only finishes the answer (a FinishedEvent with
        stop reason "cancelled"); a native call it made anyway would raise
        EngineClosedError from the closed model rather than touch freed memory.
        """
        return _Use(self, answer_step=True)

    def close(self, cancel: Callable[[], None], free: Callable[[], None]) -> None:
        """Refuse new calls, ``cancel()`` the running answer, wait for running calls
        to return, then ``free()``. A second close() waits for the first one."""
        with self._changed:
            if self._closing:
                while not self._freed:
                    self._changed.wait()
                return
            self._closing = True
            cancel()
            while self._calls:
                self._changed.wait()
        try:
            free()
        finally:
            with self._changed:
                self._freed = True
                self._changed.notify_all()

    def _enter(self, answer_step: bool) -> bool:
        with self._changed:
            if not self._closing:
                self._calls += 1
                return True
            if not answer_step:
                raise EngineClosedError(CLOSED_MESSAGE)
            while not self._freed:
                self._changed.wait()
            return False

    def _leave(self) -> None:
        with self._changed:
            self._calls -= 1
            if not self._calls:
                self._changed.notify_all()


class _Use:
    def __init__(self, guard: NativeGuard, answer_step: bool) -> None:
        self._guard = guard
        self._answer_step = answer_step
        self._counted = False

    def __enter__(self) -> None:
        self._counted = self._guard._enter(self._answer_step)

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._counted:
            self._counted = False
            self._guard._leave()
