"""One-time llama.cpp initialisation and capture of its log.

llama.cpp reports *why* a load failed only in its log, so the log callback keeps
the recent lines; errors raised by the engine quote them. Everything is also
forwarded to Python logging at DEBUG so the terminal stays quiet by default.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import deque

import llama_cpp

logger = logging.getLogger("core.llama_cpp")

# "stderr" leaves llama.cpp's own logging in place (debugging a native crash).
NATIVE_LOG_ENV = "SPECCHAT_NATIVE_LOG"
_GGML_LOG_LEVEL_ERROR = 4
_GGML_LOG_LEVEL_WARN = 3
_recent_problems: deque[str] = deque(maxlen=20)
_init_lock = threading.Lock()
_initialised = False


@llama_cpp.llama_log_callback
def _on_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    message = text.decode("utf-8", errors="replace").rstrip()
    if not message:
        return
    if level in (_GGML_LOG_LEVEL_ERROR, _GGML_LOG_LEVEL_WARN):
        _recent_problems.append(message)
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
    ensure_backend()
    return bool(llama_cpp.llama_supports_gpu_offload())
