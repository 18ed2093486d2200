"""Errors the server answers with, in OpenAI's error format.

OpenAI's clients read ``{"error": {"message", "type", "param", "code"}}`` and show
the message; ``param`` names the request field at fault.
"""

from __future__ import annotations

from typing import Any

from core.errors import SpecChatError


class ApiError(SpecChatError):
    """A request the server refuses; ``str()`` is the message the client sees."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": str(self),
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(param: str, message: str) -> ApiError:
    """A 400 naming the field at fault (``param``) in its message too."""
    return ApiError(400, f"{param}: {message}", param=param, code="invalid_value")
