"""A real server on a real localhost port, run by a helper thread's asyncio loop.

The tests call it with the official (synchronous) ``openai`` client from the test
thread, as any application would; the engine runs in its worker process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from core.engine import GenerationSettings, ModelConfig
from core.server.request_log import RequestLogEntry
from core.server.routes import ServingContext
from core.server.runner import LocalServer
from core.worker.client import EngineWorker
from core.worker.generation_queue import GenerationQueue

T = TypeVar("T")


class ServerThread:
    """Loads ``target``/``draft`` in a worker process and serves them on port 0."""

    def __init__(
        self,
        target: ModelConfig,
        draft: ModelConfig | None,
        settings: GenerationSettings,
        *,
        api_key: str | None = None,
        max_waiting: int = 8,
    ) -> None:
        self.log: list[RequestLogEntry] = []
        self._log_lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="test-server-loop", daemon=True
        )
        self._thread.start()
        self.worker: EngineWorker | None = None
        self.server: LocalServer | None = None
        try:
            self.call(self._start(target, draft, settings, api_key, max_waiting), timeout=300)
        except BaseException:
            self.close()
            raise

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _record(self, entry: RequestLogEntry) -> None:
        with self._log_lock:
            self.log.append(entry)

    def entries(self) -> list[RequestLogEntry]:
        with self._log_lock:
            return list(self.log)

    async def _start(
        self,
        target: ModelConfig,
        draft: ModelConfig | None,
        settings: GenerationSettings,
        api_key: str | None,
        max_waiting: int,
    ) -> None:
        worker = EngineWorker()
        self.worker = worker
        await worker.load(target, draft)
        self.queue = GenerationQueue(lambda: worker, max_waiting=max_waiting)
        context = ServingContext(
            self.queue,
            pair=lambda: worker.pair_info if worker.running else None,
            settings=lambda: settings,
            api_key=api_key,
            on_request=self._record,
        )
        self.server = LocalServer(context, "127.0.0.1", 0)
        await self.server.start()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.worker is not None:
            await self.worker.close()

    def close(self) -> None:
        try:
            if self.loop.is_running():
                self.call(self._stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()
