"""Errors the conversation store raises; each message is fit to show a user."""

from __future__ import annotations

from core.errors import SpecChatError


class StoreError(SpecChatError):
    """The conversations database refused an operation or cannot be used."""


class NotFoundError(StoreError):
    """A conversation or message id that the database does not hold (any more)."""
