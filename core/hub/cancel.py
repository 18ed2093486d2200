"""Cancel a blocking HTTP transfer from another thread, at once.

A thread blocked in ``recv`` on a stalled connection only wakes when data arrives,
the read timeout passes (30 s) or the socket is shut down; closing the socket from
another thread does not wake it on Linux. So every socket a download opens is
recorded (through httpcore's documented ``trace`` request extension, which reports
each new connection) and shut down when the cancel event is set. The blocked read
then ends with an error the downloader recognises as the cancel.

Known gap: a cancel while the TCP connection itself is being opened (DNS, SYN)
waits for the connect timeout; the body and header reads, where stalls happen on
a flaky network, are covered.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

# Events after which httpcore hands us a connected (or TLS-wrapped) stream.
_STREAM_EVENTS = ("connection.connect_tcp.complete", "connection.start_tls.complete")


class ConnectionCanceller:
    """Records a transfer's sockets; ``cancel()`` shuts them all down, later ones too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cancelled = False

    def trace(self, event_name: str, info: dict[str, Any]) -> None:
        """httpcore ``trace`` extension callback: pass as ``extensions={"trace": ...}``."""
        if event_name not in _STREAM_EVENTS:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            self._add(sock)

    def _add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            cancelled = self._cancelled
        if cancelled:
            _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket is detached (fileno -1) once TLS wraps it; the TLS socket was
    # recorded too. socket.socket.shutdown skips SSLSocket's override, which would
    # drop its SSL object under the reading thread's feet.
    if sock.fileno() == -1:
        return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def cancel_connections_on(
    event: threading.Event, canceller: ConnectionCanceller, poll_s: float
) -> Iterator[None]:
    """While the block runs, a watcher thread shuts the connections down once ``event`` is set.

    ``event`` is a plain ``threading.Event`` (what the window and the CLI set), which
    has no callbacks, so the watcher polls it every ``poll_s``.
    """
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if event.wait(poll_s):
                logger.debug("download cancelled: closing its connections")
                canceller.cancel()
                return

    watcher = threading.Thread(target=watch, name="specchat-download-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()
