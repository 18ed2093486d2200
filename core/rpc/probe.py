"""Asks an RPC worker, over the wire, whether it answers and how much memory it lends.

Pure Python on a plain socket, so a worker that is down, busy or of another
version is reported as an error naming it, instead of reaching ggml's client,
which aborts the whole process on any of those. It speaks the three requests
of ggml-rpc's protocol that change nothing on the worker: HELLO, DEVICE_COUNT
and GET_DEVICE_MEMORY (ggml/src/ggml-rpc/ggml-rpc.cpp in the vendored llama.cpp).
A worker serves one client at a time, so a probe of a worker that a loaded model
is using waits for its turn and reports the worker as busy.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from core.human_units import format_gib
from core.rpc.errors import RpcWorkerError

# ggml-rpc.h of llama-cpp-python 0.3.36: a worker must have the same major version
# and at most this minor version, or ggml's client aborts the handshake.
PROTOCOL_MAJOR = 7
PROTOCOL_MINOR = 0
DEFAULT_TIMEOUT_S = 3.0

# enum rpc_cmd
_CMD_GET_DEVICE_MEMORY = 11
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
# rpc_msg_hello_req: conn_caps[RPC_CONN_CAPS_SIZE]; all zero asks for plain TCP.
_CONN_CAPS_SIZE = 24
_HELLO_RESPONSE = struct.Struct(f"<BBBx{_CONN_CAPS_SIZE}x")
_DEVICE_COUNT_RESPONSE = struct.Struct("<I")
_MEMORY_REQUEST = struct.Struct("<I")
_MEMORY_RESPONSE = struct.Struct("<QQ")
# A request is | command (1 byte) | size (8 bytes) | data |; a reply | size | data |.
_REQUEST_HEADER = struct.Struct("<BQ")
_REPLY_SIZE = struct.Struct("<Q")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class WorkerDevice:
    """One device an RPC worker lends (a GPU, or its CPU and RAM)."""

    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class WorkerReport:
    """What an RPC worker said about itself."""

    endpoint: str
    version: str
    devices: tuple[WorkerDevice, ...]

    @property
    def free_bytes(self) -> int:
        return sum(device.free_bytes for device in self.devices)

    @property
    def total_bytes(self) -> int:
        return sum(device.total_bytes for device in self.devices)

    def describe(self) -> str:
        """E.g. ``"1 device, 5.20 GiB free of 7.80 GiB"``."""
        count = len(self.devices)
        return f"{count} device{'s' if count != 1 else ''}, {describe_memory(self.devices)}"


def describe_memory(devices: Sequence[WorkerDevice]) -> str:
    """Free and total memory of a worker's devices, in words that don't mislead.

    ggml reports a CPU device's free memory as its total ("free" RAM is
    ill-defined, says ggml-cpu), so a device whose free equals its total is shown
    with its size only, not as all free.
    """
    total = sum(device.total_bytes for device in devices)
    known = [device for device in devices if device.free_bytes != device.total_bytes]
    if not known:
        return f"{format_gib(total)} (free memory not reported)"
    free = sum(device.free_bytes for device in known)
    unknown = len(devices) - len(known)
    note = f"; free not reported for {unknown} of them" if unknown else ""
    return f"{format_gib(free)} free of {format_gib(total)}{note}"


@dataclass(frozen=True)
class WorkerStatus:
    """A probe's outcome: the report of a worker that answered, or why it did not.

    ``in_use``: the worker holds a model this app loaded. It answers only on that
    model's connection, so it was only checked to accept connections (no report).
    """

    endpoint: str
    report: WorkerReport | None
    error: str
    in_use: bool = False

    @property
    def reachable(self) -> bool:
        return self.report is not None or (self.in_use and not self.error)


def _connect(endpoint: str, timeout_s: float) -> socket.socket:
    host, _, port_text = endpoint.rpartition(":")
    try:
        return socket.create_connection((host, int(port_text)), timeout=timeout_s)
    except socket.gaierror as exc:
        raise RpcWorkerError(
            f"RPC worker {endpoint}: cannot resolve host {host!r} ({exc.strerror})", endpoint
        ) from exc
    except ConnectionRefusedError as exc:
        raise RpcWorkerError(
            f"RPC worker {endpoint} refused the connection: no rpc-server listens there "
            f"(start one on that machine with: specchat-cli rpc-server --port {port_text})",
            endpoint,
        ) from exc
    except TimeoutError as exc:
        raise RpcWorkerError(
            f"RPC worker {endpoint} did not accept a connection within {timeout_s:g} s "
            "(machine down, wrong address, or a firewall)",
            endpoint,
        ) from exc
    except OSError as exc:
        raise RpcWorkerError(
            f"RPC worker {endpoint} is unreachable: {exc.strerror or exc}", endpoint
        ) from exc


def probe_worker(endpoint: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> WorkerReport:
    """Connect, shake hands and read the worker's devices and memory.

    Raises:
        RpcWorkerError: naming ``endpoint``, when it is unreachable, busy, speaks
            another protocol version or lends no device.
    """
    connection = _connect(endpoint, timeout_s)
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return _ask(connection, endpoint)
        except TimeoutError as exc:
            raise RpcWorkerError(
                f"RPC worker {endpoint} accepted the connection but did not answer within "
                f"{timeout_s:g} s: it is busy with another client (a worker serves one at "
                "a time, and a model loaded on it, by this app or another machine, holds "
                "it until unloaded), or it is not a llama.cpp rpc-server",
                endpoint,
            ) from exc
        except OSError as exc:
            raise RpcWorkerError(
                f"RPC worker {endpoint} dropped the connection: {exc.strerror or exc}", endpoint
            ) from exc


def check_workers(
    endpoints: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[WorkerReport]:
    """Probe every worker at once; raises the RpcWorkerError of the first listed that failed."""
    outcomes = _all_at_once(lambda endpoint: _outcome(probe_worker, endpoint, timeout_s), endpoints)
    for outcome in outcomes:
        if isinstance(outcome, RpcWorkerError):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, WorkerReport)]


def probe_workers(
    endpoints: Sequence[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    in_use: Collection[str] = (),
) -> list[WorkerStatus]:
    """Probe every worker at once; never raises, each status says what happened.

    The ones ``in_use`` (holding a model this app loaded) are only checked to
    accept connections: a probe would wait behind that model's connection.
    """

    def status(endpoint: str) -> WorkerStatus:
        if endpoint in in_use:
            failure = _outcome(_accepts, endpoint, timeout_s)
            return WorkerStatus(endpoint, None, str(failure or ""), in_use=True)
        report = _outcome(probe_worker, endpoint, timeout_s)
        if isinstance(report, RpcWorkerError):
            return WorkerStatus(endpoint, None, str(report))
        return WorkerStatus(endpoint, report, "")

    return _all_at_once(status, endpoints)


def _accepts(endpoint: str, timeout_s: float) -> None:
    # Nothing is sent: the worker, once free, finds the connection closed and moves on.
    _connect(endpoint, timeout_s).close()


def accepts_connections(endpoint: str, timeout_s: float) -> bool:
    """Whether ``endpoint`` still accepts a connection (nothing is sent on it)."""
    return _outcome(_accepts, endpoint, timeout_s) is None


def _outcome(
    ask: Callable[[str, float], _Result], endpoint: str, timeout_s: float
) -> _Result | RpcWorkerError:
    try:
        return ask(endpoint, timeout_s)
    except RpcWorkerError as exc:
        return exc


def _all_at_once(ask: Callable[[str], _Result], endpoints: Sequence[str]) -> list[_Result]:
    """``ask`` of each endpoint, in order; in parallel, so N workers that time out
    cost one timeout, not N."""
    if len(endpoints) <= 1:
        return [ask(endpoint) for endpoint in endpoints]
    with ThreadPoolExecutor(len(endpoints), thread_name_prefix="rpc-probe") as pool:
        return list(pool.map(ask, endpoints))


def _ask(connection: socket.socket, endpoint: str) -> WorkerReport:
    hello = _request(connection, endpoint, _CMD_HELLO, bytes(_CONN_CAPS_SIZE), _HELLO_RESPONSE.size)
    major, minor, patch = _HELLO_RESPONSE.unpack(hello)
    version = f"{major}.{minor}.{patch}"
    if major != PROTOCOL_MAJOR or minor > PROTOCOL_MINOR:
        raise RpcWorkerError(
            f"RPC worker {endpoint} speaks RPC protocol {version}, this llama.cpp speaks "
            f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: run the same llama-cpp-python version "
            "on both machines",
            endpoint,
        )
    reply = _request(connection, endpoint, _CMD_DEVICE_COUNT, b"", _DEVICE_COUNT_RESPONSE.size)
    (count,) = _DEVICE_COUNT_RESPONSE.unpack(reply)
    if count == 0:
        raise RpcWorkerError(f"RPC worker {endpoint} lends no devices", endpoint)
    devices = []
    for index in range(count):
        reply = _request(
            connection,
            endpoint,
            _CMD_GET_DEVICE_MEMORY,
            _MEMORY_REQUEST.pack(index),
            _MEMORY_RESPONSE.size,
        )
        free, total = _MEMORY_RESPONSE.unpack(reply)
        devices.append(WorkerDevice(free, total))
    return WorkerReport(endpoint, version, tuple(devices))


def _request(
    connection: socket.socket, endpoint: str, command: int, data: bytes, reply_size: int
) -> bytes:
    connection.sendall(_REQUEST_HEADER.pack(command, len(data)) + data)
    (size,) = _REPLY_SIZE.unpack(_receive(connection, endpoint, _REPLY_SIZE.size))
    if size != reply_size:
        raise RpcWorkerError(
            f"RPC worker {endpoint} answered with a {size}-byte message where "
            f"{reply_size} bytes were expected: it is not a compatible llama.cpp rpc-server",
            endpoint,
        )
    return _receive(connection, endpoint, size)


def _receive(connection: socket.socket, endpoint: str, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            raise RpcWorkerError(
                f"RPC worker {endpoint} closed the connection during the handshake "
                "(not a llama.cpp rpc-server of this version?)",
                endpoint,
            )
        chunks.extend(chunk)
    return bytes(chunks)
