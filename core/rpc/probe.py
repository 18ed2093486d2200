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
from collections.abc import Sequence
from dataclasses import dataclass

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
        """E.g. ``"1 device, 5.2 GiB free of 7.8 GiB"``."""
        count = len(self.devices)
        return (
            f"{count} device{'s' if count != 1 else ''}, "
            f"{format_gib(self.free_bytes)} free of {format_gib(self.total_bytes)}"
        )


@dataclass(frozen=True)
class WorkerStatus:
    """A probe's outcome: the report of a worker that answered, or why it did not."""

    endpoint: str
    report: WorkerReport | None
    error: str

    @property
    def reachable(self) -> bool:
        return self.report is not None


def probe_worker(endpoint: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> WorkerReport:
    """Connect, shake hands and read the worker's devices and memory.

    Raises:
        RpcWorkerError: naming ``endpoint``, when it is unreachable, busy, speaks
            another protocol version or lends no device.
    """
    host, _, port_text = endpoint.rpartition(":")
    try:
        connection = socket.create_connection((host, int(port_text)), timeout=timeout_s)
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
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return _ask(connection, endpoint)
        except TimeoutError as exc:
            raise RpcWorkerError(
                f"RPC worker {endpoint} accepted the connection but did not answer within "
                f"{timeout_s:g} s: a worker serves one client at a time and this one is "
                "probably busy with another (or it is not a llama.cpp rpc-server)",
                endpoint,
            ) from exc
        except OSError as exc:
            raise RpcWorkerError(
                f"RPC worker {endpoint} dropped the connection: {exc.strerror or exc}", endpoint
            ) from exc


def check_workers(
    endpoints: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[WorkerReport]:
    """Probe every worker; raises the first worker's RpcWorkerError."""
    return [probe_worker(endpoint, timeout_s) for endpoint in endpoints]


def probe_workers(
    endpoints: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[WorkerStatus]:
    """Probe every worker; never raises, each status says what happened."""
    statuses = []
    for endpoint in endpoints:
        try:
            statuses.append(WorkerStatus(endpoint, probe_worker(endpoint, timeout_s), ""))
        except RpcWorkerError as exc:
            statuses.append(WorkerStatus(endpoint, None, str(exc)))
    return statuses


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
