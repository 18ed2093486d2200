"""Errors of the RPC backend; each names the worker or the build at fault."""

from __future__ import annotations

from core.errors import ConfigError, SpecChatError

NO_RPC_MESSAGE = (
    "this llama.cpp build has no RPC support; reinstall with CMAKE_ARGS=-DGGML_RPC=on "
    '(pip install --force-reinstall --no-cache-dir "llama-cpp-python==0.3.36" '
    "with that variable set)"
)


class RpcUnavailableError(ConfigError):
    """RPC workers were asked for but llama.cpp was built without ``-DGGML_RPC=on``."""


class RpcWorkerError(SpecChatError):
    """An RPC worker is unreachable, busy, incompatible or reports no devices.

    Not a ModelLoadError: the model is fine, and loading it again some other way
    (the CPU fallback after a failed GPU load) would only ask the same worker again.

    Attributes:
        endpoint: the worker's ``host:port``.
    """

    def __init__(self, message: str, endpoint: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint
