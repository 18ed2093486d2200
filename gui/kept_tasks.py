"""Asyncio tasks that stay referenced until they end, with their failures reported.

qasync's ``asyncSlot`` (0.28) keeps no reference to the task it starts, and a task
nobody holds can be garbage-collected mid-flight; an exception nobody retrieves is
lost. Every coroutine the window starts goes through one of these instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class KeptTasks:
    """Holds the tasks it spawned until they are done; logs (and reports) failures."""

    def __init__(
        self, what: str, on_failure: Callable[[BaseException], None] | None = None
    ) -> None:
        self._what = what
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("%s failed", self._what, exc_info=exc)
            if self._on_failure is not None:
                self._on_failure(exc)
