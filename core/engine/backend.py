"""One-time llama.cpp initialisation and capture of its log.

llama.cpp reports *why* a load failed only in its log, so the log callback keeps
the recent lines; errors raised by the engine quote them. Everything is also
forwarded to Python logging at DEBUG so the terminal stays quiet by default.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from core.interrupts import native_callback

logger = logging.getLogger("core.llama_cpp")

# "stderr" leaves llama.cpp's own logging in place (debugging a native crash).
NATIVE_LOG_ENV = "SPECCHAT_NATIVE_LOG"
_GGML_LOG_LEVEL_ERROR = 4
_GGML_LOG_LEVEL_WARN = 3
_recent_problems: deque[str] = deque(maxlen=20)
_init_lock = threading.Lock()
_initialised = False
# Extra receivers of llama.cpp's warnings and errors, e.g. the engine process, which
# writes them to its stderr so a crash report can quote the last one.
_problem_listeners: list[Callable[[int, str], None]] = []


@llama_cpp.llama_log_callback
@native_callback(None)
def _on_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace").rstrip()
    if not message:
        return
    if level in (_GGML_LOG_LEVEL_ERROR, _GGML_LOG_LEVEL_WARN):
        _recent_problems.append(message)
        for listener in _problem_listeners:
            listener(level, message)
    logger.debug("%s", message)


def ensure_backend() -> None:
    """Initialise llama.cpp's backend and log capture once per process."""
    global _initialised
    with _init_lock:
        if _initialised:
            return
        if os.environ.get(NATIVE_LOG_ENV) != "stderr":
            llama_cpp.llama_log_set(_on_llama_log, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _initialised = True


def clear_recent_problems() -> None:
    _recent_problems.clear()


def recent_problems() -> str:
    """The warnings and errors llama.cpp logged since the last clear, joined."""
    return " | ".join(_recent_problems)


def gpu_offload_supported() -> bool:
    """Whether this machine has a GPU that layers can be offloaded to.

    ``llama_supports_gpu_offload()`` alone is also true for every build with RPC
    support, GPU or not, so the registry decides when it can be read.
    """
    ensure_backend()
    if not llama_cpp.llama_supports_gpu_offload():
        return False
    devices = backend_devices()
    return not devices or bool(gpu_devices(devices))


def report_problem(message: str) -> bool:
    """Pass an error found outside llama.cpp's log (e.g. a lost RPC worker) to the
    listeners as if llama.cpp had logged it; False when nobody listens."""
    _recent_problems.append(message)
    for listener in _problem_listeners:
        listener(_GGML_LOG_LEVEL_ERROR, message)
    return bool(_problem_listeners)


def add_problem_listener(listener: Callable[[int, str], None]) -> None:
    """Also send llama.cpp's warnings and errors to ``listener(level, message)``.

    ``level`` is ggml's: 3 warning, 4 error. Called on whatever thread llama.cpp
    logs from; the listener must not raise.
    """
    _problem_listeners.append(listener)


# The registry of llama.cpp's RPC workers' devices.
RPC_BACKEND = "RPC"
# ggml_backend_dev_type values (ggml-backend.h).
_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


@dataclass(frozen=True)
class BackendDevice:
    """One compute device llama.cpp can use, as ggml's backend registry lists it.

    Attributes:
        name: the device's short name, e.g. "CUDA0" or "CPU".
        description: e.g. "NVIDIA H100 80GB HBM3", or the CPU's model name.
        backend: the registry it belongs to: "CPU", "CUDA", "Metal", "Vulkan"...
        kind: "cpu", "gpu", "igpu" (integrated, shares RAM), "accel" or "meta".
        memory_free / memory_total: bytes, as the backend reports them.
    """

    name: str
    description: str
    backend: str
    kind: str
    memory_free: int
    memory_total: int


@functools.cache
def load_ggml_library() -> ctypes.CDLL:
    """libggml with the registry functions typed; raises OSError if it is missing."""
    # The registry lives in libggml, next to libllama in llama_cpp's lib folder
    # (LLAMA_CPP_LIB_PATH overrides it, as for libllama).
    from llama_cpp._ctypes_extensions import load_shared_library

    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    folder = Path(override) if override else Path(llama_cpp.__file__).parent / "lib"
    library = load_shared_library("ggml", folder)
    library.ggml_backend_dev_count.restype = ctypes.c_size_t
    library.ggml_backend_dev_count.argtypes = []
    library.ggml_backend_dev_get.restype = ctypes.c_void_p
    library.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(library, name).restype = ctypes.c_char_p
        getattr(library, name).argtypes = [ctypes.c_void_p]
    library.ggml_backend_dev_type.restype = ctypes.c_int
    library.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    library.ggml_backend_dev_memory.restype = None
    library.ggml_backend_dev_memory.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    library.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    library.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    library.ggml_backend_reg_name.restype = ctypes.c_char_p
    library.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    return library


def backend_devices() -> list[BackendDevice]:
    """The devices in ggml's registry; empty if the registry cannot be read."""
    ensure_backend()
    try:
        ggml = load_ggml_library()
    except (OSError, AttributeError, ImportError) as exc:
        logger.info("cannot read ggml's device registry: %s", exc)
        return []
    devices = []
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        if not device:
            continue
        registry = ggml.ggml_backend_dev_backend_reg(device)
        backend = (
            (ggml.ggml_backend_reg_name(registry) or b"").decode("utf-8", "replace")
            if registry
            else ""
        )
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        # Asking an RPC device connects to its worker, and ggml aborts the process if
        # the worker is gone (or waits forever if it serves another client); workers'
        # memory is read by core.rpc.probe instead.
        if backend != RPC_BACKEND:
            ggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        devices.append(
            BackendDevice(
                name=(ggml.ggml_backend_dev_name(device) or b"").decode("utf-8", "replace"),
                description=(ggml.ggml_backend_dev_description(device) or b"").decode(
                    "utf-8", "replace"
                ),
                backend=backend,
                kind=_DEVICE_KINDS.get(ggml.ggml_backend_dev_type(device), "other"),
                memory_free=int(free.value),
                memory_total=int(total.value),
            )
        )
    return devices


def cpu_model_name() -> str:
    """The processor's marketing name, e.g. "AMD EPYC 7B13", or a generic fallback."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def gpu_devices(devices: list[BackendDevice] | None = None) -> list[BackendDevice]:
    """This machine's devices with their own memory that layers can be offloaded to
    (RPC workers' devices are not this machine's)."""
    devices = backend_devices() if devices is None else devices
    return [
        device
        for device in devices
        if device.kind in ("gpu", "igpu") and device.backend != RPC_BACKEND
    ]


def describe_placement(gpu_layers: int) -> tuple[str, str]:
    """(backend, device) that a model with ``gpu_layers`` offloaded layers runs on.

    With no offloaded layers (or no GPU backend) that is ("CPU", the CPU's name);
    otherwise the first GPU's backend and description, e.g. ("CUDA", "NVIDIA H100").
    """
    if gpu_layers > 0 and gpu_offload_supported():
        gpus = gpu_devices()
        if gpus:
            return gpus[0].backend or gpus[0].name, gpus[0].description or gpus[0].name
    return "CPU", cpu_model_name()
