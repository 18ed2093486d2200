"""``host:port`` lists of RPC workers and ``--tensor-split`` proportions, parsed and checked.

ggml splits an endpoint at its first colon, so IPv6 literals cannot be written;
a host name that resolves to an IPv6 address still works.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from core.errors import ConfigError

DEFAULT_RPC_PORT = 50052
# ggml-rpc.h: GGML_RPC_MAX_SERVERS
MAX_RPC_SERVERS = 16
_SEPARATORS = re.compile(r"[,\s]+")
# llama.cpp's --tensor-split takes "3,1" or "3/1".
_SPLIT_SEPARATORS = re.compile(r"[,/\s]+")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


def is_port_number(text: str) -> bool:
    """A port a worker listens on: 1 to 65535 (0, "any free port", names no worker)."""
    return text.isdigit() and 1 <= int(text) <= 65535


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` stripped, or ConfigError saying what is wrong with it."""
    text = endpoint.strip()
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ConfigError(f"RPC worker {text!r} needs the form host:port, e.g. 192.168.1.7:50052")
    if ";" in text:
        raise ConfigError(f"RPC worker {text!r}: separate workers with commas, not semicolons")
    if host.startswith("[") or host.count(":") > 1:
        raise ConfigError(
            f"RPC worker {text!r}: ggml cannot parse IPv6 addresses; use a host name "
            "that resolves to it"
        )
    if ":" in host or not _HOST.match(host):
        raise ConfigError(f"RPC worker {text!r}: {host!r} is not a host name or IPv4 address")
    if not is_port_number(port_text):
        raise ConfigError(f"RPC worker {text!r}: the port must be a number from 1 to 65535")
    return f"{host}:{int(port_text)}"


def parse_endpoints(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"a:1,b:2"`` (or a list of such strings) as checked, de-duplicated endpoints."""
    parts = _SEPARATORS.split(text) if isinstance(text, str) else list(text)
    endpoints: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ConfigError(f"an RPC worker must be a host:port string, got {part!r}")
        if not part.strip():
            continue
        endpoint = check_endpoint(part)
        if endpoint in endpoints:
            raise ConfigError(f"RPC worker {endpoint} is listed twice")
        endpoints.append(endpoint)
    if len(endpoints) > MAX_RPC_SERVERS:
        raise ConfigError(f"at most {MAX_RPC_SERVERS} RPC workers are supported by ggml")
    return tuple(endpoints)


def parse_tensor_split(text: str | Iterable[float | int | str]) -> tuple[float, ...]:
    """``"3,1"`` (or ``"3/1"``, or numbers) as proportions; empty means "by free memory"."""
    parts = _SPLIT_SEPARATORS.split(text.strip()) if isinstance(text, str) else list(text)
    proportions: list[float] = []
    for part in parts:
        if isinstance(part, str) and not part.strip():
            continue
        try:
            value = float(part)
        except (TypeError, ValueError):
            raise ConfigError(
                f"tensor split: {part!r} is not a number; write proportions like 3,1"
            ) from None
        if isinstance(part, bool) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"tensor split: {part!r} must be a finite number >= 0")
        proportions.append(value)
    if proportions and not any(proportions):
        raise ConfigError("tensor split: at least one proportion must be above 0")
    return tuple(proportions)
