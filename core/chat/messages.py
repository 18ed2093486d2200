"""From a stored conversation to the message list the chat template renders.

The template sees what the user sees: the system prompt, then every turn,
interrupted partial answers included as they are (the user reads them as the
model's words, so the model should too).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.engine.chat_template import ChatMessage
from core.store.records import Conversation


def chat_messages(
    conversation: Conversation, new_user_text: str | None = None
) -> list[ChatMessage]:
    """The system prompt and turns of ``conversation``, plus ``new_user_text`` if given.

    ``new_user_text`` is a message not stored yet, so the context can be checked
    before sending. Empty answers (the worker died before the first token) are
    left out, and back-to-back messages of one role are joined: many templates
    (Mistral, Gemma) refuse a conversation whose roles do not alternate.
    """
    turns = [(message.role, message.text) for message in conversation.messages]
    if new_user_text is not None:
        turns.append(("user", new_user_text))
    messages: list[ChatMessage] = []
    if conversation.system_prompt.strip():
        messages.append(ChatMessage("system", conversation.system_prompt))
    for role, text in turns:
        if role == "assistant" and not text:
            continue
        if messages and messages[-1].role == role:
            messages[-1] = ChatMessage(role, messages[-1].content + "\n\n" + text)
        else:
            messages.append(ChatMessage(role, text))
    return messages


def _split(messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], list[list[ChatMessage]]]:
    """The leading system messages, and the turns: each a user message and its answers."""
    head: list[ChatMessage] = []
    turns: list[list[ChatMessage]] = []
    for message in messages:
        if message.role == "system" and not turns:
            head.append(message)
        elif message.role == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return head, turns


def count_turns(messages: Sequence[ChatMessage]) -> int:
    """How many turns (a user message and the answers after it) ``messages`` holds."""
    return len(_split(messages)[1])


def drop_oldest_turns(messages: Sequence[ChatMessage], n: int) -> list[ChatMessage]:
    """``messages`` without its ``n`` oldest turns; the system prompt always stays.

    The last turn (the question being asked) cannot be dropped.
    """
    head, turns = _split(messages)
    if not 0 <= n < max(len(turns), 1):
        raise ValueError(f"can drop 0 to {len(turns) - 1} of {len(turns)} turns, not {n}")
    return head + [message for turn in turns[n:] for message in turn]
