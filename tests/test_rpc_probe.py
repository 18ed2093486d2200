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
from core.rpc.probe import check_workers, probe_worker, probe_workers
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
    lingering = socket.create_server(("127.0.0.1", 0))
    try:
        endpoint = f"127.0.0.1:{lingering.getsockname()[1]}"
        started = time.monotonic()
        line = describe_worker_loss("Remote RPC server crashed", [endpoint], wait_s=0.3)
        assert time.monotonic() - started < 3
    finally:
        lingering.close()
    assert line.startswith(f"RPC worker {endpoint} stopped answering or answered wrongly")


def test_a_killed_workers_port_that_closes_a_moment_later_names_it_among_live_ones() -> None:
    # A killed worker's port can accept a connection for a moment after its
    # connection to us broke: which worker died shows only when it closes.
    live = socket.create_server(("127.0.0.1", 0))
    dying = socket.create_server(("127.0.0.1", 0))
    closer = threading.Timer(0.4, dying.close)
    try:
        live_endpoint = f"127.0.0.1:{live.getsockname()[1]}"
        dying_endpoint = f"127.0.0.1:{dying.getsockname()[1]}"
        closer.start()
        line = describe_worker_loss("Remote RPC server crashed", [live_endpoint, dying_endpoint])
    finally:
        closer.cancel()
        live.close()
        dying.close()
    assert line.startswith(f"RPC worker {dying_endpoint} stopped answering in the middle")
    assert live_endpoint not in line


def test_workers_are_probed_at_once_so_silent_ones_cost_one_timeout() -> None:
    silent = [socket.create_server(("127.0.0.1", 0)) for _ in range(4)]
    try:
        endpoints = [f"127.0.0.1:{server.getsockname()[1]}" for server in silent]
        started = time.monotonic()
        statuses = probe_workers(endpoints, timeout_s=1.0)
        took = time.monotonic() - started
        missing = f"127.0.0.1:{free_port()}"
        with pytest.raises(RpcWorkerError) as caught:
            check_workers([endpoints[0], missing], timeout_s=1.0)
    finally:
        for server in silent:
            server.close()
    assert [status.endpoint for status in statuses] == endpoints
    assert all("did not answer within 1 s" in status.error for status in statuses)
    # At once: about 1 s, with room for a loaded machine; one after the other: 4 s.
    assert took < 3.0
    # The first listed worker that failed is the one named.
    assert caught.value.endpoint == endpoints[0]


def test_a_worker_in_use_here_is_only_checked_to_accept_connections() -> None:
    held = socket.create_server(("127.0.0.1", 0))
    try:
        endpoint = f"127.0.0.1:{held.getsockname()[1]}"
        missing = f"127.0.0.1:{free_port()}"
        started = time.monotonic()
        statuses = probe_workers([endpoint, missing], timeout_s=2.0, in_use={endpoint, missing})
        assert time.monotonic() - started < 1.5
    finally:
        held.close()
    assert statuses[0].reachable and statuses[0].in_use and statuses[0].report is None
    assert not statuses[1].reachable and "refused the connection" in statuses[1].error
