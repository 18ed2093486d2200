"""This process as an RPC worker: lends its GPUs (or CPU and RAM) to a client elsewhere.

``ggml_backend_rpc_start_server`` blocks for good and serves one client at a
time. It runs on a daemon thread so that Ctrl+C, which Python only sees between
bytecodes of the main thread, still stops the worker.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import socket
import threading
from pathlib import Path

from core.rpc import native
from core.rpc.endpoints import check_endpoint
from core.rpc.errors import RpcWorkerError

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
UNSAFE_HOST_WARNING = (
    "WARNING: this RPC worker listens on {host}, not only on this machine. llama.cpp's "
    "RPC protocol has no authentication and no encryption: anyone who can reach "
    "{host}:{port} can use this machine's memory and compute and read what it "
    "computes. Use it on a trusted network only, never on an open one."
)


def unsafe_host_warning(host: str, port: int) -> str | None:
    """The warning for a worker reachable from other machines; None on loopback."""
    if host in LOOPBACK_HOSTS:
        return None
    return UNSAFE_HOST_WARNING.format(host=host, port=port)


def check_port_free(host: str, port: int) -> None:
    """Raise RpcWorkerError when ``host:port`` cannot be listened on (ggml only prints)."""
    try:
        addresses = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RpcWorkerError(
            f"cannot listen on {host}:{port}: unknown host ({exc.strerror})", f"{host}:{port}"
        ) from exc
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As ggml's server socket does, so a port in TIME_WAIT is not taken for busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addresses[0][4])
        except OSError as exc:
            hint = "; pick another --port" if exc.errno == errno.EADDRINUSE else ""
            raise RpcWorkerError(
                f"cannot listen on {host}:{port}: {exc.strerror}{hint}", f"{host}:{port}"
            ) from exc


class RpcServer:
    """One worker endpoint; ``start()`` returns, ``wait()`` blocks while it serves.

    Args:
        host, port: where to listen.
        threads: CPU threads for the computations it runs.
        cache_dir: where big tensors are cached by hash, so a client that loads the
            same model again sends hashes instead of data (llama.cpp's ``-c``).
    """

    def __init__(self, host: str, port: int, threads: int, cache_dir: Path | None = None) -> None:
        self.endpoint = check_endpoint(f"{host}:{port}")
        self.host, self.port = host, port
        self.threads = threads
        self.cache_dir = cache_dir
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        start_server = native.rpc_function("ggml_backend_rpc_start_server")
        check_port_free(self.host, self.port)
        devices = native.server_devices()
        if not devices:
            raise RpcWorkerError("this machine has no device ggml can lend", self.endpoint)
        cache = None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            cache = str(self.cache_dir).encode()
        device_array = (ctypes.c_void_p * len(devices))(*devices)
        endpoint = self.endpoint.encode()

        def serve() -> None:
            start_server(endpoint, cache, self.threads, len(devices), device_array)

        self._thread = threading.Thread(target=serve, name="rpc-server", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server stops (True) or ``timeout_s`` passes (False)."""
        assert self._thread is not None, "start() first"
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
