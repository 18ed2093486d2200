"""Conversation logic without Qt: template messages from a stored chat, context fit."""

from core.chat.context_fit import (
    ContextFit,
    check_context_fit,
    fewest_turns_to_drop,
    fewest_turns_to_drop_async,
)
from core.chat.messages import chat_messages, count_turns, drop_oldest_turns

__all__ = [
    "ContextFit",
    "chat_messages",
    "check_context_fit",
    "count_turns",
    "drop_oldest_turns",
    "fewest_turns_to_drop",
    "fewest_turns_to_drop_async",
]
