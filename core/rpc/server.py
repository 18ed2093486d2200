"""This process as an RPC worker: lends its GPUs (or CPU and RAM) to a client elsewhere.

``ggml_backend_rpc_start_server`` blocks for good and serves one client at a
time. It runs on a daemon thread so that Ctrl+C, which Python only sees between
bytecodes of the main thread, still stops the worker.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import socket
import threading
from pathlib import Path

from core.rpc import native
from core.rpc.endpoints import check_endpoint
from core.rpc.errors import RpcWorkerError

logger = logging.getLogger(__name__)

UNSAFE_HOST_WARNING = (
    "WARNING: this RPC worker listens on {host}, not only on this machine. llama.cpp's "
    "RPC protocol has no authentication and no encryption: anyone who can reach "
    "{host}:{port} can use this machine's memory and compute and read what it "
    "computes. Use it on a trusted network only, never on an open one."
)
# ggml's server ends at once when its socket cannot be made; a start that lasted
# this long is listening.
START_GRACE_S = 0.5


def unsafe_host_warning(host: str, port: int) -> str | None:
    """The warning for a worker reachable from other machines; None on loopback."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host == "localhost":
            return None
    return UNSAFE_HOST_WARNING.format(host=host, port=port)


def listen_address(host: str, port: int) -> str:
    """The IPv4 address ``host`` names, once checked that ``host:port`` can be listened on.

    ggml's server takes only an IPv4 literal ("localhost" fails) and only prints
    when the port is taken, so both are settled here.

    Raises:
        RpcWorkerError: the host is unknown, or the address or port cannot be used.
    """
    try:
        addresses = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RpcWorkerError(
            f"cannot listen on {host}:{port}: unknown host, or one without an IPv4 address "
            f"({exc.strerror})",
            f"{host}:{port}",
        ) from exc
    address = str(addresses[0][4][0])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As ggml's server socket does, so a port in TIME_WAIT is not taken for busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            hint = "; pick another --port" if exc.errno == errno.EADDRINUSE else ""
            raise RpcWorkerError(
                f"cannot listen on {host}:{port}: {exc.strerror}{hint}", f"{host}:{port}"
            ) from exc
    return address


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
        """Start serving; returns once it listens.

        Raises:
            RpcWorkerError: the address cannot be listened on, or ggml's server ended.
        """
        start_server = native.rpc_function("ggml_backend_rpc_start_server")
        address = listen_address(self.host, self.port)
        devices = native.server_devices()
        if not devices:
            raise RpcWorkerError("this machine has no device ggml can lend", self.endpoint)
        cache = None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            cache = str(self.cache_dir).encode()
        device_array = (ctypes.c_void_p * len(devices))(*devices)
        endpoint = f"{address}:{self.port}".encode()

        def serve() -> None:
            start_server(endpoint, cache, self.threads, len(devices), device_array)

        self._thread = threading.Thread(target=serve, name="rpc-server", daemon=True)
        self._thread.start()
        if self.wait(START_GRACE_S):
            raise RpcWorkerError(
                f"the RPC worker on {self.endpoint} could not start; ggml's reason is "
                "printed above",
                self.endpoint,
            )

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server stops (True) or ``timeout_s`` passes (False)."""
        assert self._thread is not None, "start() first"
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
