"""Conversations on disk: SQLite (WAL) with a schema version, exports to Markdown and JSON."""

from core.store.errors import NotFoundError, StoreError
from core.store.export import conversation_to_json, conversation_to_markdown, steps_from_export
from core.store.records import (
    Conversation,
    ConversationHeader,
    ConversationSummary,
    StoredMessage,
    StoredStep,
)
from core.store.store import DEFAULT_TITLE, ConversationStore, default_path

__all__ = [
    "DEFAULT_TITLE",
    "Conversation",
    "ConversationHeader",
    "ConversationStore",
    "ConversationSummary",
    "NotFoundError",
    "StoreError",
    "StoredMessage",
    "StoredStep",
    "conversation_to_json",
    "conversation_to_markdown",
    "default_path",
    "steps_from_export",
]
