"""Schema versions: pending migrations run in order, atomically; newer databases are refused,
and a database that cannot be used is refused with what to do about it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.store import ConversationStore, StoreError
from core.store.database import open_database, problem_sentence
from core.store.migrations import MIGRATIONS, migrate, schema_version

pytest_plugins = ["tests.store_fixtures"]

# A later schema, as a future SpecChat might add it: it relies on migration 1's tables.
PINNED = (
    "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
    "UPDATE conversations SET pinned = 1 WHERE title LIKE '%important%'",
)


def _version_1_database(path: Path) -> None:
    """A database as SpecChat with schema version 1 left it, with some content."""
    connection = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO conversations (id, title, system_prompt, created_at, updated_at) "
        "VALUES (1, 'An important chat', '', 1.0, 2.0), (2, 'Small talk', '', 1.0, 3.0)"
    )
    connection.execute(
        "INSERT INTO messages (conversation_id, position, role, text, created_at) "
        "VALUES (1, 0, 'user', 'hello', 1.5)"
    )
    connection.close()


def test_new_database_gets_the_latest_version(store: ConversationStore) -> None:
    connection = sqlite3.connect(store.path)
    assert schema_version(connection) == len(MIGRATIONS)
    connection.close()


def test_a_version_1_database_opens_with_its_content(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version_1_database(path)
    with ConversationStore(path) as store:
        assert [c.title for c in store.list_conversations()] == ["Small talk", "An important chat"]
        assert store.load_conversation(1).messages[0].text == "hello"


def test_pending_migrations_run_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version_1_database(path)
    connection = open_database(path)
    assert migrate(connection, (*MIGRATIONS, PINNED)) == 2
    assert schema_version(connection) == 2
    rows = connection.execute("SELECT title, pinned FROM conversations ORDER BY id").fetchall()
    assert rows == [("An important chat", 1), ("Small talk", 0)]
    # Nothing left to do the second time.
    assert migrate(connection, (*MIGRATIONS, PINNED)) == 2
    connection.close()


def test_an_empty_database_runs_every_migration(tmp_path: Path) -> None:
    connection = open_database(tmp_path / "new.sqlite3")
    assert migrate(connection, (*MIGRATIONS, PINNED)) == 2
    columns = [row[1] for row in connection.execute("PRAGMA table_info(conversations)")]
    assert "pinned" in columns
    connection.close()


def test_a_failing_migration_leaves_the_database_untouched(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version_1_database(path)
    broken = (*PINNED, "ALTER TABLE no_such_table ADD COLUMN x")
    connection = open_database(path)
    with pytest.raises(sqlite3.OperationalError):
        migrate(connection, (*MIGRATIONS, broken))
    assert schema_version(connection) == 1
    columns = [row[1] for row in connection.execute("PRAGMA table_info(conversations)")]
    assert "pinned" not in columns
    connection.close()


def test_a_database_from_a_newer_specchat_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    connection.close()
    with pytest.raises(StoreError, match="newer SpecChat"):
        ConversationStore(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"is damaged .*Move it elsewhere"):
        ConversationStore(path)


def test_a_database_with_a_damaged_page_is_refused_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    with ConversationStore(path) as store:
        for turn in range(40):
            conversation = store.create_conversation()
            store.add_user_message(conversation, f"question {turn} " + "word " * 300)
    content = bytearray(path.read_bytes())
    page_size = 4096
    assert len(content) > 4 * page_size
    content[3 * page_size : 4 * page_size] = b"\xab" * page_size  # a page of garbage
    path.write_bytes(bytes(content))
    # Opening used to succeed, and the window then died listing the conversations,
    # before it could show anything.
    with pytest.raises(StoreError, match=f"{path.name} is damaged"):
        ConversationStore(path)


def test_a_database_locked_at_start_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.store.database.BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "conversations.sqlite3"
    ConversationStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writes
    try:
        with pytest.raises(StoreError, match="locked by another program") as caught:
            ConversationStore(path)
        assert "upgrade" not in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_read_only_database_is_not_called_unusable(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    ConversationStore(path).close()
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        reader.execute("CREATE TABLE t (x)")
    reader.close()
    sentence = problem_sentence(path, caught.value)
    assert "read-only" in sentence and str(tmp_path) in sentence
    assert "damaged" not in sentence
