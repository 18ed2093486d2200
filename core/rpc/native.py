"""ggml's RPC client and device registry, reached through ctypes.

llama.cpp's own ``--rpc`` (common/arg.cpp: ``add_rpc_devices``) registers each
worker with ``ggml_backend_rpc_add_server`` + ``ggml_backend_register``, after
which a model loaded with ``devices = NULL`` spreads over every registered
device. Registration is for the life of the process, so once a worker is known
every model here gets an explicit, NULL-terminated device list instead: the
target its workers plus the local GPUs, everything else (the draft, a target
reloaded without the worker) only the local GPUs.

ggml's client aborts the process on any network failure. Workers are therefore
probed in Python before ggml sees them (see ``core.rpc.probe``), and a worker
that dies later is named by an abort hook before the process ends.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp

from core.engine.backend import RPC_BACKEND, load_ggml_library, report_problem
from core.rpc.errors import NO_RPC_MESSAGE, RpcUnavailableError, RpcWorkerError
from core.rpc.own_connections import connected_endpoints
from core.rpc.probe import accepts_connections, check_workers

logger = logging.getLogger(__name__)

# ggml_backend_dev_type values (ggml-backend.h).
DEVICE_CPU = 0
DEVICE_GPU = 1
DEVICE_IGPU = 2
# The exit status of a process whose RPC worker was lost mid-computation.
WORKER_LOST_EXIT = 3
# How long a lost worker's port is watched for closing, so the message can name it.
LOSS_NAMING_WAIT_S = 2.0
# How long one look at a worker's port may take.
LOSS_CONNECT_TIMEOUT_S = 1.0

_ADD_SERVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
_START_SERVER = ctypes.CFUNCTYPE(
    None,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_void_p),
)
_PROTOTYPES = {
    "ggml_backend_rpc_add_server": _ADD_SERVER,
    "ggml_backend_rpc_start_server": _START_SERVER,
}
_ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

_lock = threading.Lock()
# endpoint -> its devices, in the order ggml registered them.
_registered: dict[str, list[int]] = {}
# The workers models here were loaded onto: the ones a lost connection can be to.
_in_use: list[str] = []
# ggml's messages when its RPC client loses a worker (ggml-rpc.cpp).
_SOURCE_PREFIX = re.compile(r"^\S+:\d+: ")
_WORKER_LOSS_MARKERS = ("Remote RPC server crashed", "Failed to connect to", "RPC handshake failed")


def rpc_supported() -> bool:
    """Whether this llama.cpp was built with ``-DGGML_RPC=on``."""
    return bool(llama_cpp.llama_supports_rpc())


def require_rpc() -> None:
    """Raise RpcUnavailableError, with how to rebuild, when RPC is not compiled in."""
    if not rpc_supported():
        raise RpcUnavailableError(NO_RPC_MESSAGE)


@functools.cache
def _ggml() -> ctypes.CDLL:
    """libggml with the registry functions the RPC client needs typed."""
    library = load_ggml_library()
    library.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    library.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    library.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    library.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.ggml_backend_register.restype = None
    library.ggml_backend_register.argtypes = [ctypes.c_void_p]
    library.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    library.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    library.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    library.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    library.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    library.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    library.ggml_set_abort_callback.restype = ctypes.c_void_p
    library.ggml_set_abort_callback.argtypes = [_ABORT_CALLBACK]
    return library


def rpc_function(name: str) -> Any:
    """An entry point of ggml's RPC backend, found through its registry."""
    require_rpc()
    ggml = _ggml()
    registry = ggml.ggml_backend_reg_by_name(RPC_BACKEND.encode())
    address = ggml.ggml_backend_reg_get_proc_address(registry, name.encode()) if registry else None
    if not address:
        raise RpcUnavailableError(f"{NO_RPC_MESSAGE} ({name} is missing)")
    return _PROTOTYPES[name](address)


def register_workers(endpoints: Sequence[str]) -> list[int]:
    """Make each worker's devices known to ggml; returns them in ``endpoints`` order.

    Every worker is probed first, so an unreachable, busy or incompatible one
    raises RpcWorkerError naming it instead of ending the process; except one a
    model loaded here already uses (the target, when the draft joins it there).
    """
    require_rpc()
    check_workers(_unconnected(endpoints))
    ggml = _ggml()
    add_server = rpc_function("ggml_backend_rpc_add_server")
    devices: list[int] = []
    with _lock:
        # Before add_server, which connects: a worker lost from here on is named.
        # Kept from earlier loads too: the draft may use other workers than the target.
        for endpoint in endpoints:
            if endpoint not in _in_use:
                _in_use.append(endpoint)
        _install_worker_loss_report()
        for endpoint in endpoints:
            if endpoint not in _registered:
                registry = add_server(endpoint.encode())
                if not registry:
                    raise RpcWorkerError(f"RPC worker {endpoint} lends no devices", endpoint)
                # add_server returns the same registry for an endpoint it has seen;
                # registering it twice would list its devices twice.
                ggml.ggml_backend_register(registry)
                count = ggml.ggml_backend_reg_dev_count(registry)
                _registered[endpoint] = [
                    int(ggml.ggml_backend_reg_dev_get(registry, index)) for index in range(count)
                ]
                logger.info("registered RPC worker %s (%d devices)", endpoint, count)
            devices.extend(_registered[endpoint])
    return devices


def _unconnected(endpoints: Sequence[str]) -> list[str]:
    """The workers to probe: not those a model loaded here already uses, which
    answer on its connection (a probe would wait behind it and call them busy)."""
    connected = connected_endpoints(endpoints)
    if connected is None:
        # The open sockets cannot be listed here: a worker registered before is
        # taken as connected, as a model loaded on it most likely still is.
        with _lock:
            connected = {endpoint for endpoint in endpoints if endpoint in _registered}
    return [endpoint for endpoint in endpoints if endpoint not in connected]


def loaded_worker_memory(endpoint: str) -> tuple[int, int]:
    """(free, total) bytes of a registered worker's devices, read through ggml's registry.

    Only while a model loaded onto the worker holds its connection: the question then
    travels on that connection. Otherwise ggml would open a new one, and wait forever
    if the worker is busy with another client.
    """
    ggml = _ggml()
    free_sum, total_sum = 0, 0
    with _lock:
        devices = list(_registered.get(endpoint, ()))
    for device in devices:
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        ggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        free_sum += free.value
        total_sum += total.value
    return free_sum, total_sum


def registered_endpoints() -> list[str]:
    with _lock:
        return list(_registered)


def local_accelerators() -> list[int]:
    """This machine's GPUs as llama.cpp picks them by default (RPC devices left out).

    Integrated GPUs count only when there is no discrete one, as in llama.cpp's
    ``llama_prepare_model_devices``.
    """
    ggml = _ggml()
    gpus: list[int] = []
    integrated: list[int] = []
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        if not device:
            continue
        kind = ggml.ggml_backend_dev_type(device)
        registry = ggml.ggml_backend_dev_backend_reg(device)
        name = (ggml.ggml_backend_reg_name(registry) or b"").decode() if registry else ""
        if name == RPC_BACKEND:
            continue
        if kind == DEVICE_GPU:
            gpus.append(int(device))
        elif kind == DEVICE_IGPU:
            integrated.append(int(device))
    return gpus or integrated


def server_devices() -> list[int]:
    """What a worker on this machine lends: its GPUs, else its CPU (as rpc-server does)."""
    devices = local_accelerators()
    if devices:
        return devices
    cpu = _ggml().ggml_backend_dev_by_type(DEVICE_CPU)
    return [int(cpu)] if cpu else []


def device_array(devices: Sequence[int]) -> ctypes.Array[ctypes.c_void_p]:
    """``devices`` as the NULL-terminated array ``llama_model_params.devices`` points to."""
    return (ctypes.c_void_p * (len(devices) + 1))(*devices, None)


# -- a worker lost mid-computation ------------------------------------------------------


def _lost_workers(endpoints: Sequence[str], wait_s: float) -> list[str]:
    """The workers that no longer accept connections. A killed worker's port can
    accept for a moment after its connection to us broke, so look again for up
    to ``wait_s`` before giving up on naming one."""
    deadline = time.monotonic() + wait_s
    while True:
        lost = [e for e in endpoints if not accepts_connections(e, LOSS_CONNECT_TIMEOUT_S)]
        if lost or time.monotonic() >= deadline:
            return lost
        time.sleep(0.1)


def describe_worker_loss(
    ggml_message: str, endpoints: Sequence[str], wait_s: float = LOSS_NAMING_WAIT_S
) -> str:
    """One line naming the worker(s) that stopped answering, and what to do."""
    lost = _lost_workers(endpoints, wait_s)
    if len(lost) == 1:
        who = f"RPC worker {lost[0]} stopped answering"
    elif lost:
        who = f"RPC workers {', '.join(lost)} stopped answering"
    elif len(endpoints) == 1:
        who = f"RPC worker {endpoints[0]} stopped answering or answered wrongly"
    else:
        who = f"an RPC worker ({', '.join(endpoints)}) stopped answering or answered wrongly"
    return (
        f"{who} in the middle of a computation ({ggml_message.strip()}); start it again, "
        "or load the model without it"
    )


def _report_on_stderr(line: str) -> None:
    # The answer streamed so far may end mid-line: the error starts a line of its own.
    sys.stderr.write(f"\nerror: {line}\n")


_report_worker_loss: Callable[[str], None] = _report_on_stderr


def report_worker_loss_with(report: Callable[[str], None]) -> None:
    """Where a lost worker is told when nobody listens to llama.cpp's problems (a
    command line whose failures are JSON on stdout, say); stderr by default.
    ``report`` runs on ggml's thread right before the process exits."""
    global _report_worker_loss
    _report_worker_loss = report


@_ABORT_CALLBACK
def _on_ggml_abort(message: bytes | None) -> None:
    # Runs on whichever thread ggml aborts from, right before abort(); it must not raise.
    text = (message or b"").decode("utf-8", "replace")
    if not any(marker in text for marker in _WORKER_LOSS_MARKERS):
        # Anything else keeps ggml's behaviour: say it, then abort().
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        return
    try:
        # ggml prefixes "source_file.cpp:line: "; the user needs only the words.
        # No lock: ggml may abort inside register_workers, which holds it.
        line = describe_worker_loss(_SOURCE_PREFIX.sub("", text), list(_in_use))
        if not report_problem(line):
            _report_worker_loss(line)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        # The client's state is gone with the worker; a clean exit with a known
        # status instead of abort()'s core dump.
        os._exit(WORKER_LOST_EXIT)


def _install_worker_loss_report() -> None:
    # The callback object is module-level, so it lives as long as ggml may call it.
    _ggml().ggml_set_abort_callback(_on_ggml_abort)
