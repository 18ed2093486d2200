"""A queue of downloads run by worker threads, observable and cancellable from any thread.

The GUI's download manager and the command line both drive this class.
Listeners are called on the worker thread: a GUI forwards them to its own
thread (a Qt signal or ``loop.call_soon_threadsafe``), never touches widgets
from them.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.hub.client import HubClient, shared_ssl_context
from core.hub.download import (
    DownloadProgress,
    DownloadRequest,
    DownloadState,
    FileDownloader,
    TransferSettings,
    default_destination,
)
from core.hub.errors import DownloadCancelled, HubError

logger = logging.getLogger(__name__)

Listener = Callable[["DownloadSnapshot"], None]


@dataclass(frozen=True)
class DownloadSnapshot:
    """An immutable view of one task, safe to hand to another thread."""

    task_id: int
    request: DownloadRequest
    progress: DownloadProgress
    path: Path | None = None
    error: HubError | None = None

    @property
    def state(self) -> DownloadState:
        return self.progress.state


class DownloadTask:
    """Handle of one queued download."""

    def __init__(self, task_id: int, request: DownloadRequest) -> None:
        self.task_id = task_id
        self.request = request
        self.cancel_event = threading.Event()
        # Set when a worker thread takes the task: until its first progress report a
        # running task still reads as QUEUED, and may already be writing data.
        self.started = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._snapshot = DownloadSnapshot(task_id, request, DownloadProgress(DownloadState.QUEUED))

    def snapshot(self) -> DownloadSnapshot:
        with self._lock:
            return self._snapshot

    @property
    def state(self) -> DownloadState:
        return self.snapshot().state

    def cancel(self) -> None:
        """Stop the download soon; its partial data stays on disk for a resume."""
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task has finished (done, failed or cancelled)."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> Path:
        """The downloaded file's path once done.

        Raises:
            HubError: why it failed or that it was cancelled.
            TimeoutError: not finished within ``timeout``.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"download of {self.request.filename} still running")
        snapshot = self.snapshot()
        if snapshot.error is not None:
            raise snapshot.error
        assert snapshot.path is not None  # DONE always records the path
        return snapshot.path

    def _update(self, snapshot: DownloadSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot
        if snapshot.state.finished:
            self._finished.set()


class DownloadManager:
    """Runs queued downloads on ``max_parallel`` worker threads.

    Args:
        client: endpoint and token; ``HubClient.from_environment()`` when None.
        listener: called with a snapshot on every state change and progress step.
    """

    def __init__(
        self,
        client: HubClient | None = None,
        max_parallel: int = 1,
        settings: TransferSettings | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.client = client or HubClient.from_environment()
        self._settings = settings or TransferSettings()
        self._listeners: list[Listener] = [listener] if listener else []
        self._queue: queue.Queue[DownloadTask | None] = queue.Queue()
        self._tasks: dict[int, DownloadTask] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"specchat-download-{index}", daemon=True)
            for index in range(max_parallel)
        ]
        for worker in self._workers:
            worker.start()

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def enqueue(
        self,
        repo_id: str,
        filename: str,
        destination_dir: Path | None = None,
        revision: str | None = None,
    ) -> DownloadTask:
        """Queue a download; the same destination already queued or running is reused."""
        request = DownloadRequest(
            repo_id=repo_id,
            filename=filename,
            destination_dir=destination_dir or default_destination(repo_id),
            revision=revision,
        )
        with self._lock:
            if self._closed:
                raise HubError("the download manager is shut down")
            for task in self._tasks.values():
                same_file = task.request.final_path == request.final_path
                # A cancelled task still on its way out must not swallow a new request.
                if same_file and not task.state.finished and not task.cancel_event.is_set():
                    return task
            task = DownloadTask(next(self._ids), request)
            self._tasks[task.task_id] = task
        self._queue.put(task)
        self._notify(task, task.snapshot())
        return task

    def tasks(self) -> list[DownloadTask]:
        with self._lock:
            return list(self._tasks.values())

    def cancel(self, task_id: int) -> None:
        """Cancel a queued or running task from any thread."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is not None:
            task.cancel()

    def shutdown(self, cancel_running: bool = True, timeout: float | None = 10.0) -> None:
        """Stop the workers; with ``cancel_running``, running and queued tasks are cancelled."""
        with self._lock:
            self._closed = True
            tasks = list(self._tasks.values())
        if cancel_running:
            for task in tasks:
                task.cancel()
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout)

    def __enter__(self) -> DownloadManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _work(self) -> None:
        # Load the certificates before the first download rather than at its start.
        shared_ssl_context()
        while (task := self._queue.get()) is not None:
            self._run(task)

    def _run(self, task: DownloadTask) -> None:
        task.started.set()  # before the cancel check: see DownloadTask.started
        base = task.snapshot()
        if task.cancel_event.is_set():
            cancelled = DownloadCancelled("download cancelled before it started")
            self._publish(task, replace(base, error=cancelled), DownloadState.CANCELLED)
            return

        def on_progress(progress: DownloadProgress) -> None:
            if progress.state.finished:
                # Announced below, once, together with the path or the error: a DONE
                # snapshot without its path would wake ``result()`` too early.
                final_progress.append(progress)
                return
            self._notify(task, replace(task.snapshot(), progress=progress))

        final_progress: list[DownloadProgress] = []

        downloader = FileDownloader(
            self.client, task.request, task.cancel_event, on_progress, self._settings
        )
        try:
            path = downloader.run()
        except DownloadCancelled as exc:
            self._publish(task, replace(task.snapshot(), error=exc), DownloadState.CANCELLED)
        except HubError as exc:
            # Info, not warning: the error reaches the user through the snapshot, and a
            # warning here would show it a second time wherever logging prints.
            logger.info("download of %s failed: %s", task.request.filename, exc)
            self._publish(task, replace(task.snapshot(), error=exc), DownloadState.FAILED)
        except Exception as exc:
            logger.exception("download of %s crashed", task.request.filename)
            error = HubError(f"download failed: {type(exc).__name__}: {exc}")
            self._publish(task, replace(task.snapshot(), error=error), DownloadState.FAILED)
        else:
            done = replace(task.snapshot(), path=path)
            if final_progress:
                done = replace(done, progress=final_progress[-1])
            self._publish(task, done, DownloadState.DONE)

    def _publish(
        self, task: DownloadTask, snapshot: DownloadSnapshot, state: DownloadState
    ) -> None:
        # The progress is the last report's; its note was told with that report (a
        # note comes with one report only), so the final snapshot must not repeat it.
        final = replace(snapshot, progress=replace(snapshot.progress, state=state, note=None))
        self._notify(task, final)

    def _notify(self, task: DownloadTask, snapshot: DownloadSnapshot) -> None:
        task._update(snapshot)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(snapshot)
            except Exception:
                logger.exception("download listener failed")
