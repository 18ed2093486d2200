"""Whether this process already holds an open TCP connection to an RPC worker.

ggml's client keeps one connection per worker and shares it between every model
placed there (the target and a draft on the same workers, say). While it is open
the worker, which serves one client at a time, cannot answer anyone else, this
process's own probe included: a probe would wait behind that connection and call
the worker busy. Read from the process's open sockets, so it is true exactly
while some loaded model keeps the connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator, Sequence

# Where a POSIX system lists a process's open file descriptors.
_FD_FOLDERS = ("/proc/self/fd", "/dev/fd")


def _open_descriptors() -> list[int] | None:
    for folder in _FD_FOLDERS:
        with contextlib.suppress(OSError):
            return [int(name) for name in os.listdir(folder) if name.isdigit()]
    return None


def _peers(descriptors: list[int]) -> Iterator[tuple[str, int]]:
    for descriptor in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            # A duplicate, so closing it leaves the owner's socket alone.
            with socket.socket(fileno=os.dup(descriptor)) as duplicate:
                if duplicate.type != socket.SOCK_STREAM:
                    continue
                peer = duplicate.getpeername()
        except OSError:
            continue  # closed meanwhile, not connected, or not an internet socket
        if isinstance(peer, tuple) and len(peer) >= 2:
            yield str(peer[0]), int(peer[1])


def _addresses(host: str, port: int) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError:
        return set()


def connected_endpoints(endpoints: Sequence[str]) -> set[str] | None:
    """The ones among ``endpoints`` this process has an open connection to.

    None where the open sockets cannot be listed (Windows): the caller decides.
    """
    descriptors = _open_descriptors()
    if descriptors is None:
        return None
    peers = set(_peers(descriptors))
    if not peers:
        return set()
    connected = set()
    for endpoint in endpoints:
        host, _, port_text = endpoint.rpartition(":")
        port = int(port_text)
        if any((address, port) in peers for address in _addresses(host, port)):
            connected.add(endpoint)
    return connected
