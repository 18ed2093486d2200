"""The wire probe against sockets that misbehave the ways real networks do."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from core.rpc.errors import RpcWorkerError
from core.rpc.native import describe_worker_loss
from core.rpc.probe import probe_worker, probe_workers
from tests.support.rpc_workers import free_port


@contextmanager
def listening(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that hands each connection to ``handle``; yields its endpoint."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    endpoint = f"127.0.0.1:{server.getsockname()[1]}"

    def serve() -> None:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            handle(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.close()
        thread.join(5)


def test_a_port_nobody_listens_on_is_named_with_how_to_start_a_worker() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    with pytest.raises(RpcWorkerError, match="refused the connection") as caught:
        probe_worker(endpoint)
    assert endpoint in str(caught.value) and "rpc-server" in str(caught.value)
    assert caught.value.endpoint == endpoint


def test_a_worker_that_never_answers_is_reported_busy_within_the_timeout() -> None:
    with listening(lambda _connection: time.sleep(2)) as endpoint:
        started = time.monotonic()
        with pytest.raises(RpcWorkerError, match=r"did not answer within 0\.3 s") as caught:
            probe_worker(endpoint, timeout_s=0.3)
        assert time.monotonic() - started < 2
    assert "busy" in str(caught.value) and endpoint in str(caught.value)


def test_a_worker_of_another_protocol_version_is_refused_by_name() -> None:
    def old_worker(connection: socket.socket) -> None:
        connection.recv(1 + 8 + 24)
        connection.sendall(struct.pack("<Q", 28) + bytes([6, 1, 0, 0]) + bytes(24))
        time.sleep(0.5)

    with (
        listening(old_worker) as endpoint,
        pytest.raises(RpcWorkerError, match=r"protocol 6\.1\.0") as caught,
    ):
        probe_worker(endpoint)
    assert endpoint in str(caught.value) and "same llama-cpp-python version" in str(caught.value)


def test_a_peer_that_hangs_up_is_not_taken_for_a_worker() -> None:
    with listening(lambda connection: connection.close()) as endpoint:
        statuses = probe_workers([endpoint])
    assert not statuses[0].reachable
    assert endpoint in statuses[0].error


def test_a_lost_worker_is_named_among_live_ones() -> None:
    live = socket.create_server(("127.0.0.1", 0))
    try:
        live_endpoint = f"127.0.0.1:{live.getsockname()[1]}"
        lost_endpoint = f"127.0.0.1:{free_port()}"
        line = describe_worker_loss(
            "Remote RPC server crashed or returned malformed response",
            [live_endpoint, lost_endpoint],
        )
    finally:
        live.close()
    assert line.startswith(f"RPC worker {lost_endpoint} stopped answering")
    assert live_endpoint not in line and "without it" in line


def test_the_only_worker_is_named_even_while_its_port_still_answers() -> None:
    # A killed worker's port can accept a connection for a moment after it died.
    lingering = socket.create_server(("127.0.0.1", 0))
    try:
        endpoint = f"127.0.0.1:{lingering.getsockname()[1]}"
        line = describe_worker_loss("Remote RPC server crashed", [endpoint])
    finally:
        lingering.close()
    assert line.startswith(f"RPC worker {endpoint} stopped answering or sent garbage")
