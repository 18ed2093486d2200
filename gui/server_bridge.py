"""The local server (core/server) seen as Qt signals, for the Server panel.

The server runs as a task on the window's qasync loop, next to the engine
worker's client: its work per request is a few small JSON messages, so the GUI
thread stays free, and it shares the window's generation queue, so API requests
and window answers take turns on the one engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from core.engine import GenerationSettings
from core.errors import SpecChatError
from core.server.routes import ServingContext
from core.server.runner import LocalServer
from core.worker.client import PairInfo
from core.worker.generation_queue import GenerationQueue
from gui.kept_tasks import KeptTasks

logger = logging.getLogger(__name__)


class ServerBridge(QObject):
    """Starts and stops the local server; reports its state and every request.

    Signals:
        started(str): serving; the address to paste into a client.
        stopped(): no longer serving.
        failed(str): could not start; the sentence says why.
        request_logged(object): a RequestLogEntry for each answered request.
    """

    started = Signal(str)
    stopped = Signal()
    failed = Signal(str)
    request_logged = Signal(object)

    def __init__(
        self,
        queue: GenerationQueue,
        pair: Callable[[], PairInfo | None],
        settings: Callable[[], GenerationSettings],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._queue = queue
        self._pair = pair
        self._settings = settings
        self.server: LocalServer | None = None
        self._tasks = KeptTasks("server task", on_failure=lambda exc: self.failed.emit(str(exc)))

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.running

    def request_start(self, host: str, port: int, api_key: str) -> None:
        self._tasks.spawn(self.start(host, port, api_key))

    def request_stop(self) -> None:
        self._tasks.spawn(self.stop())

    async def start(self, host: str, port: int, api_key: str) -> bool:
        """Serve on ``host:port``; False (and ``failed``) when refused or the port is taken."""
        await self.stop()
        context = ServingContext(
            self._queue,
            pair=self._pair,
            settings=self._settings,
            api_key=api_key or None,
            # The server runs on this (the GUI) thread's loop: emitting is safe.
            on_request=self.request_logged.emit,
        )
        server = LocalServer(context, host, port)
        try:
            await server.start()
        except SpecChatError as exc:
            self.failed.emit(str(exc))
            return False
        self.server = server
        self.started.emit(server.base_url)
        return True

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
            self.stopped.emit()
