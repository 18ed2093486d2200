"""What crosses the pipe between the window (or server) and the engine process.

Framing: each message is a 4-byte big-endian length followed by that many bytes of
UTF-8 JSON. A length prefix, rather than one JSON object per line, makes stray
bytes on the channel fail loudly (an absurd length) instead of being half-parsed.

Messages (all JSON objects):

- client -> host, a command: ``{"id": n, "cmd": name, ...arguments}``.
  ``cancel`` (with ``"call": id`` of the command to stop) is answered at once, even
  while another command runs; every other command runs one at a time, in order.
- host -> client:
  ``{"ready": true, "pid": p}`` once, when the host can take commands;
  ``{"id": n, "progress": [which, fraction]}`` while loading;
  ``{"id": n, "event": event_to_dict(...)}`` one per step while generating;
  ``{"id": n, "ok": true, "result": ...}`` or ``{"id": n, "ok": false, "error": {...}}``
  to end command ``n``. An error carries the exception's class (module and name),
  message and plain attributes, so the client raises the same class with the same
  message (see ``error_to_dict`` / ``error_from_dict``).
"""

from __future__ import annotations

import importlib
import json
import struct
from dataclasses import fields
from typing import Any, BinaryIO

from core.engine.chat_template import ChatMessage
from core.engine.config import DraftSettings, GenerationSettings, ModelConfig, SamplingSettings
from core.errors import EngineError, SpecChatError

HEADER = struct.Struct(">I")
# A frame longer than this means the channel is corrupt, not that a step is huge.
MAX_FRAME_BYTES = 64 << 20

# Command names.
LOAD = "load"
SET_DRAFT = "set_draft"
UNLOAD = "unload"
TOKENIZE = "tokenize"
TOKENIZE_CHAT = "tokenize_chat"
GENERATE = "generate"
# Times the loaded target's decodes of 1 … max_k tokens (core/tune/cost_curve.py).
COST_CURVE = "cost_curve"
CANCEL = "cancel"
STATE = "state"
# Only honoured when the host runs with TEST_HOOKS_ENV=1: makes the host misbehave
# the way native code does (abort, segfault, print to fd 1), so tests can check
# that the client copes.
DEBUG = "debug"
TEST_HOOKS_ENV = "SPECCHAT_WORKER_TEST_HOOKS"
# A frozen app has no "python -m": its own executable runs the host when its entry
# point sees this argument (see core.worker.host.run_if_requested).
HOST_ARGUMENT = "--specchat-engine-worker"
# POSIX: the host adds this much to its nice value before it starts any thread, so
# every engine thread runs below the client's priority (see EngineWorker's
# ``below_normal_priority``). Windows gets a priority class at creation instead.
NICE_ENV = "SPECCHAT_ENGINE_NICE"
# The host writes llama.cpp's errors to its stderr with this prefix, so the client's
# crash report can quote the last one.
LLAMA_ERROR_PREFIX = "llama.cpp error: "
LLAMA_WARNING_PREFIX = "llama.cpp warning: "


class ProtocolError(SpecChatError):
    """The engine process sent something that is not a valid message."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HEADER.pack(len(body)) + body


def read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message from a blocking stream, or None at end of stream."""
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise ProtocolError("the engine channel ended in the middle of a message")
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"corrupt engine channel (frame of {length} bytes)")
    body = stream.read(length)
    if len(body) < length:
        raise ProtocolError("the engine channel ended in the middle of a message")
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"corrupt engine message: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("corrupt engine message: not an object")
    return message


# -- values -------------------------------------------------------------------------


def model_config_to_dict(config: ModelConfig) -> dict[str, Any]:
    data = {item.name: getattr(config, item.name) for item in fields(config)}
    data["path"] = str(config.path)
    return data


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    return ModelConfig(**data)


def settings_to_dict(settings: GenerationSettings) -> dict[str, Any]:
    return settings.to_dict()


def settings_from_dict(data: dict[str, Any]) -> GenerationSettings:
    # Built field by field so settings added to the dataclasses later still cross.
    values = dict(data)
    values["sampling"] = SamplingSettings(**values["sampling"])
    values["drafting"] = DraftSettings(**values["drafting"])
    values["stop_strings"] = tuple(values.get("stop_strings", ()))
    return GenerationSettings(**values)


def messages_to_list(messages: list[ChatMessage]) -> list[list[str]]:
    return [[message.role, message.content] for message in messages]


def messages_from_list(data: list[list[str]]) -> list[ChatMessage]:
    return [ChatMessage(role, content) for role, content in data]


# -- errors -------------------------------------------------------------------------

_JSON_SCALARS = (str, int, float, bool, type(None))


def error_to_dict(error: BaseException) -> dict[str, Any]:
    """Class, message and plain attributes of an exception raised in the host."""
    attributes = {
        key: value
        for key, value in vars(error).items()
        if not key.startswith("_") and isinstance(value, _JSON_SCALARS)
    }
    return {
        "module": type(error).__module__,
        "type": type(error).__qualname__,
        "message": str(error),
        "attributes": attributes,
    }


def error_from_dict(data: dict[str, Any]) -> SpecChatError:
    """The same SpecChatError subclass with the same message and attributes.

    Only subclasses of SpecChatError from ``core`` are rebuilt; anything else (a bug
    in the host) becomes an EngineError that names the original class.
    """
    module_name = str(data.get("module", ""))
    type_name = str(data.get("type", ""))
    message = str(data.get("message", ""))
    error_class: type | None = None
    if module_name.split(".")[0] == "core":
        try:
            error_class = getattr(importlib.import_module(module_name), type_name, None)
        except ImportError:
            error_class = None
    if not (isinstance(error_class, type) and issubclass(error_class, SpecChatError)):
        return EngineError(f"the engine process failed: {type_name}: {message}")
    # Bypass __init__: subclasses may take other arguments (InsufficientMemoryError
    # takes the numbers), which come back as attributes instead.
    error: SpecChatError = error_class.__new__(error_class)
    Exception.__init__(error, message)
    for key, value in dict(data.get("attributes", {})).items():
        setattr(error, key, value)
    return error
