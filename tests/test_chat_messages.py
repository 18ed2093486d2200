"""Template messages from a stored conversation, and dropping the oldest turns."""

from __future__ import annotations

import pytest

from core.chat import chat_messages, count_turns, drop_oldest_turns
from core.engine.chat_template import ChatMessage, ChatTemplateError, render_chat
from core.store import ConversationStore
from tests.support.stored_answers import MODEL_PAIR, SETTINGS, finished, step

pytest_plugins = ["tests.store_fixtures"]


def _answer(store: ConversationStore, conversation: int, *texts: str, done: bool = True) -> None:
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    if texts:
        store.append_steps(answer, [(step(*texts), 0.1)])
    store.finish_answer(answer, finished() if done else None)


def test_system_prompt_and_turns_in_order(store: ConversationStore) -> None:
    conversation = store.create_conversation(system_prompt="You are terse.")
    store.add_user_message(conversation, "Hi")
    _answer(store, conversation, "Hello", ".")
    store.add_user_message(conversation, "Bye")
    messages = chat_messages(store.load_conversation(conversation))
    assert messages == [
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello."),
        ChatMessage("user", "Bye"),
    ]


def test_new_text_is_appended_and_no_system_prompt_means_none(store: ConversationStore) -> None:
    conversation = store.create_conversation(system_prompt="  ")
    assert chat_messages(store.load_conversation(conversation), "First") == [
        ChatMessage("user", "First")
    ]


def test_interrupted_answers_are_kept_as_they_are(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "Count to five")
    _answer(store, conversation, "1, 2, ", "3", done=False)
    messages = chat_messages(store.load_conversation(conversation), "Go on")
    assert messages[1] == ChatMessage("assistant", "1, 2, 3")
    assert messages[2] == ChatMessage("user", "Go on")


def test_empty_answers_are_skipped_and_roles_still_alternate(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "Hello?")
    _answer(store, conversation, done=False)  # the worker died before the first token
    store.add_user_message(conversation, "Are you there?")
    assert chat_messages(store.load_conversation(conversation)) == [
        ChatMessage("user", "Hello?\n\nAre you there?")
    ]


SYSTEM = ChatMessage("system", "s")
CONVERSATION = [
    SYSTEM,
    ChatMessage("user", "u1"),
    ChatMessage("assistant", "a1"),
    ChatMessage("user", "u2"),
    ChatMessage("assistant", "a2"),
    ChatMessage("user", "u3"),
]


def test_drop_oldest_turns_keeps_the_system_prompt() -> None:
    assert count_turns(CONVERSATION) == 3
    assert drop_oldest_turns(CONVERSATION, 0) == CONVERSATION
    assert drop_oldest_turns(CONVERSATION, 1) == [SYSTEM, *CONVERSATION[3:]]
    assert drop_oldest_turns(CONVERSATION, 2) == [SYSTEM, ChatMessage("user", "u3")]


def test_the_last_turn_cannot_be_dropped() -> None:
    with pytest.raises(ValueError, match="0 to 2"):
        drop_oldest_turns(CONVERSATION, 3)
    with pytest.raises(ValueError):
        drop_oldest_turns(CONVERSATION, -1)
    assert drop_oldest_turns([SYSTEM], 0) == [SYSTEM]
    assert count_turns([SYSTEM]) == 0


# Like Mistral's and Gemma's templates: roles must alternate user/assistant.
STRICT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
    "{% endif %}[{{ message['role'] }}]{{ message['content'] }}{% endfor %}"
)


def test_a_strict_template_accepts_a_conversation_with_a_lost_answer(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "One")
    _answer(store, conversation, done=False)
    store.add_user_message(conversation, "Two")
    _answer(store, conversation, "Answer")
    rendered = render_chat(
        STRICT_TEMPLATE, chat_messages(store.load_conversation(conversation), "3")
    )
    assert rendered == "[user]One\n\nTwo[assistant]Answer[user]3"
    with pytest.raises(ChatTemplateError, match="alternate"):
        render_chat(STRICT_TEMPLATE, [ChatMessage("user", "One"), ChatMessage("user", "Two")])
