"""Run blocking core calls off the GUI thread and get the result back on it.

A thread pool does the work; a timer on the GUI thread collects finished work
and calls back there, so callbacks may touch widgets. The worker threads never
touch a Qt object, not even to emit a signal: the work callables hold no Qt
references, which keeps PySide wrappers from being used or freed off the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer

logger = logging.getLogger(__name__)

R = TypeVar("R")
# Results are picked up this often while work is pending; scans and builds take
# far longer, so the delay is never noticed.
POLL_INTERVAL_MS = 30


@dataclass
class _Job:
    future: Future[Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None]


class BackgroundRunner(QObject):
    """One worker thread; callbacks come back in submission order on the GUI thread."""

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._jobs: list[_Job] = []
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setObjectName(f"{name}_poll")
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self._collect)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def submit(
        self,
        work: Callable[[], R],
        on_done: Callable[[R], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Run ``work()`` in the thread, then ``on_done(result)`` or ``on_error(exc)`` here.

        ``work`` must not hold Qt objects; the callbacks may.
        """
        if self._closed:
            return
        self._jobs.append(_Job(self._executor.submit(work), on_done, on_error))
        self._timer.start()

    def _collect(self) -> None:
        # Deliver in order: a later result never overtakes an earlier one.
        while self._jobs and self._jobs[0].future.done():
            job = self._jobs.pop(0)
            error = job.future.exception()
            if error is not None:
                job.on_error(error)
            else:
                job.on_done(job.future.result())
        if not self._jobs:
            self._timer.stop()

    def close(self) -> None:
        """Drop results still to come and let the thread end when its work does."""
        self._closed = True
        self._timer.stop()
        self._jobs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
