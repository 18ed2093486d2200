"""Start and stop the server on the running asyncio loop (the CLI's, or the window's).

uvicorn runs as a task on the caller's loop, next to the engine worker's client,
which lives on that loop too; no thread is needed because the server only moves
small JSON messages between sockets and the engine process.

The listening socket is bound here, not by uvicorn: uvicorn ends the process
(``sys.exit``) when it cannot bind, and a window must say "port in use" instead.
Embedded servers leave the process's signal handlers alone (uvicorn would take
Ctrl+C from the window); the command line keeps uvicorn's handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Generator
from types import FrameType
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.server.auth import check_bind
from core.server.routes import ServingContext, create_app

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Streams still open at stop are cut after this long (their answers are cancelled).
GRACEFUL_STOP_S = 2


def _server(config: uvicorn.Config, context: ServingContext, *, embedded: bool) -> uvicorn.Server:
    # uvicorn is imported by start(), not with this module: the window imports this
    # module on its way up and serves only when asked.
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    class CommandLineServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Ctrl+C: open answers end with a closing event inside the grace period
            # rather than being cancelled by uvicorn when it runs out (tracebacks).
            context.stopping = True
            super().handle_exit(sig, frame)

    return EmbeddedServer(config) if embedded else CommandLineServer(config)


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535 (0: any free port), got {port}")


def _bind(host: str, port: int) -> socket.socket:
    check_port(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"cannot listen on {host}: not an address of this machine ({exc}); "
            "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses"
        ) from exc
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRNOTAVAIL:
            advice = "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses"
        elif exc.errno in (errno.EACCES, errno.EPERM) and 0 < port < 1024:
            advice = "ports below 1024 need administrator rights; choose one above 1023"
        else:
            advice = "choose another port"
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}; {advice}") from exc


class LocalServer:
    """The OpenAI-compatible server over one ServingContext.

    Args:
        context: the queue, pair and settings to serve, the API key and request log.
        host, port: where to listen; port 0 picks a free one (see ``port``).
        embedded: True inside another application (leave signals alone).
    """

    def __init__(
        self,
        context: ServingContext,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        embedded: bool = True,
    ) -> None:
        self.context = context
        self.host = host
        self.requested_port = port
        self._embedded = embedded
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when started with port 0)."""
        if self._socket is None:
            return self.requested_port
        return int(self._socket.getsockname()[1])

    @property
    def listens_everywhere(self) -> bool:
        """Bound to every address of this machine (0.0.0.0 or ::), not one of them."""
        return self.host in ("0.0.0.0", "::")

    @property
    def base_url(self) -> str:
        """The address to paste into a client (OpenAI's ``base_url``): this machine's
        loopback when listening everywhere."""
        host = self.host
        if self.listens_everywhere:
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    def bind(self) -> socket.socket:
        """Take the port now (``start`` does it if not done): the command line checks
        it before the minutes of loading a pair, not after.

        Raises:
            ConfigError: a non-local address without an API key, or the port is taken.
        """
        if self._socket is None:
            check_bind(self.host, self.context.api_key)
            self._socket = _bind(self.host, self.requested_port)
        return self._socket

    async def start(self) -> None:
        """Listen and serve; returns once requests are accepted.

        Raises:
            ConfigError: a non-local address without an API key, or the port is taken.
        """
        if self.running:
            return
        sock = self.bind()
        self.context.stopping = False
        import uvicorn

        config = uvicorn.Config(
            create_app(self.context),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
        )
        server = _server(config, self.context, embedded=self._embedded)
        self._server, self._socket = server, sock
        self._task = asyncio.get_running_loop().create_task(
            server.serve(sockets=[sock]), name="specchat-server"
        )
        while not server.started:
            if self._task.done():
                sock.close()
                self._socket = None
                self._task.result()  # raises what stopped it
                raise ConfigError("the server stopped while starting")
            await asyncio.sleep(0.01)
        logger.info("serving on %s", self.base_url)

    async def wait(self) -> None:
        """Until the server stops (the command line: Ctrl+C)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def request_exit(self) -> None:
        """Ask a running server to stop (``wait`` then returns); callable from a callback."""
        self.context.stopping = True
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        """Stop listening, end open answers (each with a closing event), wait."""
        task = self._task
        try:
            # Bound and never started, or already ended (Ctrl+C: ``wait`` said how).
            if task is not None and not task.done():
                self.request_exit()
                await task
        finally:
            if self._socket is not None:
                self._socket.close()
            self._server = self._task = self._socket = None
