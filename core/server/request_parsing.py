"""A request body turned into engine settings, or a 400 that names the field.

The fields OpenAI's clients send are read; unknown fields are ignored, as
OpenAI-compatible servers do. Draft settings use llama.cpp's server names
(``speculative.n_max``, ``speculative.n_min``, ``speculative.p_min``), flat or as
a nested ``speculative`` object, and are clamped to what the loaded pair allows.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from core.engine import ChatMessage, GenerationSettings
from core.engine.config import MAX_SEED, DraftSource
from core.server.api_errors import ApiError, bad_request

MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any prompt that fits a context
MAX_STOP_STRINGS = 16
# llama.cpp verifies a draft in one batch with the last token; more than this many
# drafted tokens never pay on any pair.
MAX_DRAFT_TOKENS = 64
ROLES = {"system", "user", "assistant"}
# Newer OpenAI clients send "developer" where older ones sent "system".
ROLE_ALIASES = {"developer": "system"}


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"


@dataclass(frozen=True)
class ApiRequest:
    """What one request asks for, checked."""

    endpoint: Endpoint
    messages: tuple[ChatMessage, ...]
    prompt: str
    settings: GenerationSettings
    stream: bool
    include_usage: bool


def parse_json_body(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(
            413,
            f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}",
            code="too_large",
        )
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply to read") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise bad_request(name, f"must be a number, got {value!r}")
    number = float(value)
    if not low <= number <= high:
        raise bad_request(name, f"must be between {low:g} and {high:g}, got {value}")
    return number


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise bad_request(name, f"must be an integer, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise bad_request(name, f"must be between {low} and {high}, got {value}")
    return number


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(name, f"must be true or false, got {value!r}")
    return value


def _text(value: str, where: str) -> str:
    """``value`` if it is valid Unicode. JSON's ``\\udc80`` escapes can carry half of a
    surrogate pair (a client that cut an emoji in two), which no UTF-8 text holds."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        half = value[exc.start]
        raise bad_request(
            where,
            f"holds half of a UTF-16 surrogate pair (\\u{ord(half):04x} at character "
            f"{exc.start}), which is not text; send whole characters",
        ) from None
    return value


def _content(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, list):
        parts = []
        for index, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(
                    f"{where}[{index}]", "only text content parts are supported by this server"
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{where}[{index}].text", "must be a string")
            parts.append(_text(text, f"{where}[{index}].text"))
        return "".join(parts)
    raise bad_request(where, "must be a string or a list of text parts")


def _messages(body: dict[str, Any]) -> tuple[ChatMessage, ...]:
    value = body.get("messages")
    if value is None:
        raise bad_request("messages", "is required")
    if not isinstance(value, list) or not value:
        raise bad_request("messages", "must be a non-empty list of {role, content} objects")
    messages = []
    for index, item in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise bad_request(where, "must be an object with role and content")
        role: Any = item.get("role")
        if isinstance(role, str):
            role = ROLE_ALIASES.get(role, role)
        if role not in ROLES:
            raise bad_request(
                f"{where}.role", f"must be one of system, user, assistant; got {role!r}"
            )
        messages.append(ChatMessage(role, _content(item.get("content"), f"{where}.content")))
    return tuple(messages)


def _prompt(body: dict[str, Any]) -> str:
    value = body.get("prompt")
    if value is None:
        raise bad_request("prompt", "is required")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str):
        raise bad_request("prompt", "must be a string (one prompt per request)")
    if not value:
        raise bad_request("prompt", "must not be empty")
    return _text(value, "prompt")


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not all(isinstance(stop, str) and stop for stop in value)
        or len(value) > MAX_STOP_STRINGS
    ):
        raise bad_request(
            "stop", f"must be a non-empty string or a list of at most {MAX_STOP_STRINGS} of them"
        )
    return tuple(_text(stop, "stop") for stop in value)


def _speculative(body: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's ``speculative.*`` fields, flat or nested, under their short names."""
    nested = body.get("speculative")
    fields: dict[str, Any] = {}
    if nested is not None:
        if not isinstance(nested, dict):
            raise bad_request("speculative", "must be an object with n_max, n_min, p_min")
        fields.update(nested)
    for name in ("n_max", "n_min", "p_min"):
        if f"speculative.{name}" in body:
            fields[name] = body[f"speculative.{name}"]
    return fields


def _draft_settings(body: dict[str, Any], base: GenerationSettings) -> GenerationSettings:
    fields = _speculative(body)
    if not fields or base.drafting.source is DraftSource.NONE:
        return base
    checked = {f"speculative.{name}": value for name, value in fields.items()}
    n_max = _integer(checked, "speculative.n_max", -(1 << 31), 1 << 31)
    n_min = _integer(checked, "speculative.n_min", -(1 << 31), 1 << 31)
    p_min = _number(checked, "speculative.p_min", -math.inf, math.inf)
    drafting = base.drafting
    # Clamped, as llama.cpp's server does, rather than refused.
    top = min(MAX_DRAFT_TOKENS, max(0, n_max if n_max is not None else drafting.n_max))
    low = min(top, max(0, n_min if n_min is not None else drafting.n_min))
    chance = min(1.0, max(0.0, p_min if p_min is not None else drafting.p_min))
    return base.with_changes(drafting=replace(drafting, n_max=top, n_min=low, p_min=chance))


# Fields that change what an answer holds, which this server cannot honour: a 400
# says so instead of an answer without what the client asked for.
_UNSUPPORTED = {
    "logprobs": "log probabilities are not returned by this server",
    "top_logprobs": "log probabilities are not returned by this server",
    "echo": "the prompt is not echoed by this server",
    "best_of": "only one answer is generated per request",
}


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name, reason in _UNSUPPORTED.items():
        value = body.get(name)
        # Clients send the defaults (false, 0, null, best_of 1) on every request.
        if value in (None, False, 0) or (name == "best_of" and value == 1):
            continue
        raise bad_request(name, f"{reason}; leave it out (got {value!r})")


def parse_request(
    body: dict[str, Any], endpoint: Endpoint, base: GenerationSettings, n_ctx: int
) -> ApiRequest:
    """Check ``body`` and build the settings of its answer on top of ``base``.

    Raises:
        ApiError: 400 naming the field at fault.
    """
    if endpoint is Endpoint.CHAT:
        messages, prompt = _messages(body), ""
    else:
        messages, prompt = (), _prompt(body)
    n = _integer(body, "n", 1, 1 << 31)
    if n is not None and n != 1:
        raise bad_request("n", f"only n=1 is supported (one answer per request), got {n}")
    _refuse_unsupported(body)
    max_tokens = _integer(body, "max_completion_tokens", 1, 1 << 31)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, 1 << 31)
    if max_tokens is not None:
        # Capped, as llama.cpp's server does: clients send large defaults, and an
        # answer ends when the context is full anyway.
        max_tokens = min(max_tokens, n_ctx)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0)
    top_k = _integer(body, "top_k", 0, 1 << 20)
    min_p = _number(body, "min_p", 0.0, 1.0)
    seed = _integer(body, "seed", -(1 << 63), 1 << 63)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise bad_request("seed", f"must be between 0 and {MAX_SEED} for this engine, got {seed}")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("stream_options", "must be an object")
    include_usage = _flag(options or {}, "include_usage")
    sampling = base.sampling
    sampling_changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("temperature", temperature),
            ("top_p", top_p),
            ("top_k", top_k),
            ("min_p", min_p),
            ("seed", seed),
        )
        if value is not None
    }
    settings = _draft_settings(body, base).with_changes(
        n_predict=max_tokens if max_tokens is not None else base.n_predict,
        sampling=replace(sampling, **sampling_changes),
        stop_strings=_stops(body) or base.stop_strings,
    )
    return ApiRequest(endpoint, messages, prompt, settings, stream, include_usage)
