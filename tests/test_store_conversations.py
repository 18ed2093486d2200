"""Conversations: create, list, search, rename, system prompt, delete with undo, purge."""

from __future__ import annotations

import sqlite3

import pytest

from core import paths
from core.store import DEFAULT_TITLE, ConversationStore, NotFoundError
from tests.support.stored_answers import MODEL_PAIR, SETTINGS, finished, step

pytest_plugins = ["tests.store_fixtures"]


def test_default_path_is_in_the_data_folder() -> None:
    with ConversationStore() as store:
        assert store.path == paths.data_dir() / "conversations.sqlite3"
        store.create_conversation()
    assert store.path.is_file()


def test_database_is_wal_with_foreign_keys(store: ConversationStore) -> None:
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    assert store._db.connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_create_and_list_newest_first(store: ConversationStore) -> None:
    first = store.create_conversation("Recipes")
    second = store.create_conversation(system_prompt="Be brief.")
    listed = store.list_conversations()
    assert [c.id for c in listed] == [second, first]
    assert listed[0].title == DEFAULT_TITLE
    assert listed[0].message_count == 0
    assert store.load_conversation(second).system_prompt == "Be brief."
    # Activity moves a conversation to the top.
    store.add_user_message(first, "Soup?")
    assert [c.id for c in store.list_conversations()] == [first, second]


def test_first_message_names_a_new_chat(store: ConversationStore) -> None:
    untitled = store.create_conversation()
    named = store.create_conversation("Kept")
    store.add_user_message(untitled, "  How do I  reverse a list\nin Python?  ")
    store.add_user_message(named, "Hello")
    store.add_user_message(untitled, "Second message does not rename")
    assert store.load_conversation(untitled).title == "How do I reverse a list in Python?"
    assert store.load_conversation(named).title == "Kept"
    long = store.create_conversation()
    store.add_user_message(long, "word " * 40)
    title = store.load_conversation(long).title
    assert title.endswith("…") and len(title) <= 49 and "wor…" not in title


def test_editing_the_first_message_renames_a_chat_named_after_it(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation()
    first = store.add_user_message(conversation, "What is your favourite food?")
    store.edit_user_message(first, "What is your favourite drink?")
    assert store.load_conversation(conversation).title == "What is your favourite drink?"
    # A later message, or a title the user gave, leaves the name alone.
    second = store.add_user_message(conversation, "And colour?")
    store.edit_user_message(second, "And season?")
    assert store.load_conversation(conversation).title == "What is your favourite drink?"
    store.rename(conversation, "Favourites")
    store.edit_user_message(first, "What is your favourite book?")
    assert store.load_conversation(conversation).title == "Favourites"


def test_preview_is_the_last_message(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "Tell me a joke")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(answer, [(step("Why", " did\n", " the"), 0.1)])
    # While the answer streams the list shows the question; the answer once it ends.
    assert store.list_conversations()[0].preview == "Tell me a joke"
    store.finish_answer(answer, finished())
    assert store.list_conversations()[0].preview == "Why did the"


def test_search_matches_titles_and_message_text(store: ConversationStore) -> None:
    pasta = store.create_conversation("Pasta night")
    physics = store.create_conversation("Physics")
    store.add_user_message(physics, "Explain the Schrödinger equation simply")
    answer = store.begin_answer(physics, SETTINGS, MODEL_PAIR)
    store.append_steps(answer, [(step("It describes how a ", "WAVEFUNCTION evolves."), 0.1)])
    assert store.list_conversations("wavefunction") == []  # found once the answer ends
    store.finish_answer(answer, None)
    empty = store.create_conversation("Nothing here")

    assert [c.id for c in store.list_conversations("pasta")] == [pasta]
    assert [c.id for c in store.list_conversations("schrödinger")] == [physics]  # Unicode case
    assert [c.id for c in store.list_conversations("wavefunction")] == [physics]
    assert store.list_conversations("wavefunction")[0].preview.startswith("It describes")
    assert store.list_conversations("no such words") == []
    assert store.list_conversations("100%_") == []  # no LIKE wildcards
    assert {c.id for c in store.list_conversations("  ")} == {pasta, physics, empty}


def test_search_preview_shows_the_match(store: ConversationStore) -> None:
    conversation = store.create_conversation("Notes")
    store.add_user_message(conversation, "lorem ipsum " * 20 + "the needle is here " + "x " * 80)
    store.add_user_message(conversation, "last message")
    summary = store.list_conversations("NEEDLE")[0]
    assert summary.preview.startswith("…")
    assert "the needle is here" in summary.preview
    assert len(summary.preview) <= 100


def test_rename_and_system_prompt(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.rename(conversation, "Trip plans")
    store.set_system_prompt(conversation, "You are a travel agent.")
    loaded = store.load_conversation(conversation)
    assert (loaded.title, loaded.system_prompt) == ("Trip plans", "You are a travel agent.")
    with pytest.raises(NotFoundError):
        store.rename(9999, "x")


def test_header_reads_title_and_prompt_without_messages(store: ConversationStore) -> None:
    conversation = store.create_conversation("Title", system_prompt="Prompt")
    store.add_user_message(conversation, "hi")
    header = store.conversation_header(conversation)
    loaded = store.load_conversation(conversation)
    assert (header.id, header.title, header.system_prompt) == (conversation, "Title", "Prompt")
    assert (header.created_at, header.updated_at) == (loaded.created_at, loaded.updated_at)
    assert header.deleted_at is None and not hasattr(header, "messages")
    with pytest.raises(NotFoundError):
        store.conversation_header(9999)


def test_rename_keeps_the_list_order(store: ConversationStore) -> None:
    older = store.create_conversation("Older")
    newer = store.create_conversation("Newer")
    store.rename(older, "Renamed")
    store.set_system_prompt(older, "Prompt")
    assert [c.id for c in store.list_conversations()] == [newer, older]


def test_delete_hides_and_restore_undoes(store: ConversationStore) -> None:
    kept = store.create_conversation("Kept")
    deleted = store.create_conversation("Deleted")
    store.add_user_message(deleted, "something findable")
    store.delete(deleted)
    assert [c.id for c in store.list_conversations()] == [kept]
    assert store.list_conversations("findable") == []
    assert store.load_conversation(deleted).deleted_at is not None
    store.restore(deleted)
    assert [c.id for c in store.list_conversations()] == [deleted, kept]
    assert store.load_conversation(deleted).deleted_at is None


def test_purge_removes_deleted_conversations_with_their_messages(store: ConversationStore) -> None:
    kept = store.create_conversation("Kept")
    gone = store.create_conversation("Gone")
    store.add_user_message(gone, "hi")
    answer = store.begin_answer(gone, SETTINGS, MODEL_PAIR)
    store.append_steps(answer, [(step("hello"), 0.1)])
    store.delete(gone)
    store.purge_deleted()
    assert [c.id for c in store.list_conversations()] == [kept]
    with pytest.raises(NotFoundError):
        store.load_conversation(gone)
    with pytest.raises(NotFoundError, match="purged"):
        store.restore(gone)
    counts = [
        store._db.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("messages", "answer_steps")
    ]
    assert counts == [0, 0]


def test_unknown_ids_raise_not_found(store: ConversationStore) -> None:
    with pytest.raises(NotFoundError):
        store.load_conversation(1)
    with pytest.raises(NotFoundError):
        store.add_user_message(1, "hi")
    with pytest.raises(NotFoundError):
        store.delete(1)
    with pytest.raises(NotFoundError):
        store.edit_user_message(1, "hi")
