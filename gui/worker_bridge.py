"""The engine worker (core/worker, a separate process) seen as Qt signals.

Loading, changing the draft and unloading run as asyncio tasks on the qasync loop;
their progress and outcome come back as signals for the model panel and the
window. Generation itself is driven by the answer controller through ``worker``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.errors import SpecChatError
from core.settings import LoadRequest
from core.worker.client import EngineWorker, PairInfo, WorkerCrashedError
from core.worker.generation_queue import GenerationQueue
from core.worker.gpu_fallback import load_with_cpu_fallback
from gui.kept_tasks import KeptTasks

logger = logging.getLogger(__name__)

WorkerFactory = Callable[[Callable[[WorkerCrashedError], None]], EngineWorker]


def _default_factory(on_crash: Callable[[WorkerCrashedError], None]) -> EngineWorker:
    # Below the window's priority: the GUI thread must never wait for a core.
    return EngineWorker(on_crash=on_crash, below_normal_priority=True)


class WorkerBridge(QObject):
    """Owns the EngineWorker; turns its calls into tasks and its outcomes into signals.

    Signals:
        load_progress(str, float): which model ("target" or "draft") and how far (0..1).
        loaded(object): a PairInfo; the pair is ready.
        load_failed(str): the load was refused or failed; the sentence says why.
        load_cancelled(): the user cancelled a load.
        unloaded(): no pair is loaded any more.
        crashed(str): the worker process died; the reason in words.
        busy_changed(bool): a load, draft change or unload started or ended.
        backend_notice(str): the pair runs on the CPU although a GPU was asked for,
            and why (CPU-only build, or the GPU load failed and it was loaded again).
    """

    load_progress = Signal(str, float)
    loaded = Signal(object)
    load_failed = Signal(str)
    load_cancelled = Signal()
    unloaded = Signal()
    crashed = Signal(str)
    busy_changed = Signal(bool)
    backend_notice = Signal(str)

    def __init__(
        self, factory: WorkerFactory = _default_factory, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self.worker: EngineWorker | None = None
        self.pair: PairInfo | None = None
        self.last_request: LoadRequest | None = None
        self._wanted: LoadRequest | None = None
        self.crash_reason = ""
        self.crash_log = ""
        self._job: asyncio.Task[Any] | None = None
        self._tasks = KeptTasks("worker task")
        # One engine, one queue: the window's answers and the local server's requests.
        self.queue = GenerationQueue(self.current_worker)

    # ----- state ------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.done()

    def current_pair(self) -> PairInfo | None:
        return self.pair if self.worker is not None and self.worker.running else None

    def current_worker(self) -> EngineWorker | None:
        return self.worker

    # ----- intents (start tasks) ----------------------------------------------------

    def request_load(self, request: LoadRequest) -> None:
        """Load a pair (replacing the loaded one); progress and outcome come as signals."""
        self._run_job(self.load(request))

    def request_set_draft(self, request: LoadRequest) -> None:
        """Change the draft model or source without reloading the target."""
        self._run_job(self.set_draft(request))

    def request_unload(self) -> None:
        self._run_job(self.unload())

    def request_reload(self) -> None:
        """Restart a dead worker and load the last pair again (the crash banner's button)."""
        self._run_job(self.reload())

    def cancel_load(self) -> None:
        """Abort a running load; cancelling the awaiting task aborts it in the worker."""
        if self._job is not None and not self._job.done():
            self._job.cancel()

    def _run_job(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self.busy:
            coroutine.close()
            self.load_failed.emit("The models are still loading; wait or cancel the load first.")
            return
        self._job = self.spawn(coroutine)
        self.busy_changed.emit(True)
        self._job.add_done_callback(lambda _task: self.busy_changed.emit(False))

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.spawn(coroutine)

    # ----- coroutines (what tests await) -------------------------------------------------

    async def ensure_started(self) -> EngineWorker:
        if self.worker is None or not self.worker.running:
            if self.worker is not None:
                await self._close_worker()
            self.worker = self._factory(self._on_crash)
            self.crash_reason = ""
            await self.worker.start()
        return self.worker

    async def load(self, request: LoadRequest) -> PairInfo | None:
        """Load ``request``; returns the PairInfo, or None when refused or cancelled.

        A pair refused before loading (missing file, vocabulary, memory) leaves the
        loaded one in place; any other failure leaves nothing loaded.
        """
        worker: EngineWorker | None = None
        self._wanted = request
        try:
            worker = await self.ensure_started()
            pair, notice = await load_with_cpu_fallback(
                worker, request.target, request.draft, on_progress=self._progress
            )
        except asyncio.CancelledError:
            self.pair = None
            self.load_cancelled.emit()
            raise
        except SpecChatError as exc:
            self.pair = worker.pair_info if worker is not None and worker.running else None
            if not isinstance(exc, WorkerCrashedError):
                # Refused or failed in words: a reload should not try it again.
                self._wanted = self.last_request if self.pair is not None else None
            self.load_failed.emit(str(exc))
            return None
        self.pair = pair
        self.last_request = self._wanted = request
        self.loaded.emit(pair)
        if notice:
            self.backend_notice.emit(notice)
        return pair

    async def set_draft(self, request: LoadRequest) -> PairInfo | None:
        if self.worker is None or not self.worker.running or self.pair is None:
            return await self.load(request)
        try:
            pair = await self.worker.set_draft(request.draft, on_progress=self._progress)
        except asyncio.CancelledError:
            # The target stays loaded, without a draft.
            self.pair = self.worker.pair_info if self.worker.running else None
            if self.pair is not None:
                self.loaded.emit(self.pair)
            else:
                self.load_cancelled.emit()
            raise
        except SpecChatError as exc:
            # A refused draft keeps the current one; a failed one leaves none.
            self.pair = self.worker.pair_info if self.worker.running else None
            self.load_failed.emit(str(exc))
            return None
        self.pair = pair
        self.last_request = self._wanted = request
        self.loaded.emit(pair)
        return pair

    async def unload(self) -> None:
        self.pair = None
        self.last_request = self._wanted = None
        if self.worker is not None and self.worker.running:
            try:
                await self.worker.unload()
            except SpecChatError as exc:
                logger.warning("unload failed: %s", exc)
        self.unloaded.emit()

    async def reload(self) -> PairInfo | None:
        """A fresh worker process with the last pair loaded again."""
        await self._close_worker()
        # The pair being loaded when the process died, else the one that was loaded.
        request = self._wanted or self.last_request
        if request is None:
            await self.ensure_started()
            self.unloaded.emit()
            return None
        return await self.load(request)

    async def close(self) -> None:
        """Stop the worker process (quit)."""
        if self._job is not None and not self._job.done():
            self._job.cancel()
            await asyncio.gather(self._job, return_exceptions=True)
        await self._close_worker()

    async def _close_worker(self) -> None:
        worker, self.worker = self.worker, None
        self.pair = None
        if worker is not None:
            try:
                await worker.close()
            except SpecChatError as exc:
                logger.warning("closing the worker: %s", exc)

    # ----- callbacks from the worker -----------------------------------------------------

    def _progress(self, which: str, fraction: float) -> None:
        self.load_progress.emit(which, fraction)

    def _on_crash(self, error: WorkerCrashedError) -> None:
        self.pair = None
        self.crash_reason = str(error)
        self.crash_log = error.log_tail
        self.crashed.emit(str(error))
