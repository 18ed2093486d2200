"""Blocking core calls for the Models page: run in its own thread pool, awaited on
the qasync loop, with every task kept until it ends (``gui.kept_tasks``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gui.kept_tasks import KeptTasks

T = TypeVar("T")


class BackgroundWork:
    """A thread pool and the coroutines that await it; ``close`` ends both quietly."""

    def __init__(
        self, name: str, on_failure: Callable[[BaseException], None], threads: int = 4
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._tasks = KeptTasks(name, on_failure)
        self.closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` on the loop (dropped once closed)."""
        if self.closed:
            coroutine.close()
            return
        self._tasks.spawn(coroutine)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a pool thread; it must not touch Qt objects."""
        if self.closed:
            # Work still in flight when the page closed: end it quietly.
            raise asyncio.CancelledError
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def close(self) -> None:
        """Refuse new work; threads end when their current call returns."""
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
