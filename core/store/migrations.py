"""The schema, as a list of migrations; ``PRAGMA user_version`` says how many ran.

Never edit a migration that has shipped: append a new one. All pending
migrations run in one transaction together with the version bump, so a failure
leaves the database at its previous version, untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from core.store.errors import StoreError

Migration = Sequence[str]  # SQL statements, run in order

SCHEMA_1: Migration = (
    """
    CREATE TABLE conversations (
        -- AUTOINCREMENT: ids are never reused, so an id the window still holds
        -- (an undo, a flush timer) can never reach a newer row.
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deleted_at REAL  -- set by a soft delete, cleared by undo
    )
    """,
    "CREATE INDEX conversations_by_recency ON conversations (deleted_at, updated_at)",
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        text TEXT NOT NULL DEFAULT '',  -- an open answer's text is in its steps
        created_at REAL NOT NULL,
        settings TEXT,    -- JSON: GenerationSettings.to_dict()
        model_pair TEXT,  -- JSON: which target and draft answered
        finished TEXT,    -- JSON: event_to_dict(FinishedEvent)
        interrupted INTEGER NOT NULL DEFAULT 0,
        UNIQUE (conversation_id, position)
    )
    """,
    """
    CREATE TABLE answer_steps (
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        step_index INTEGER NOT NULL,
        at_s REAL NOT NULL,  -- seconds since the answer began
        step TEXT NOT NULL,  -- JSON: event_to_dict(StepEvent)
        text TEXT NOT NULL,  -- the step's emitted text, so closing an answer parses no JSON
        PRIMARY KEY (message_id, step_index)
    ) WITHOUT ROWID
    """,
)

MIGRATIONS: tuple[Migration, ...] = (SCHEMA_1,)


def schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the migrations the database has not seen yet, in order; return the version.

    ``connection`` must be in autocommit mode (``isolation_level=None``).
    """
    latest = len(migrations)
    # Take the write lock before reading the version, so two processes opening an
    # old database at once cannot both run the same migration.
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(connection)
        if version > latest:
            raise StoreError(
                f"The conversations database was written by a newer SpecChat (schema "
                f"version {version}; this version knows up to {latest}). Update SpecChat."
            )
        for number in range(version + 1, latest + 1):
            for statement in migrations[number - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return latest
