"""Opening the SQLite file with the settings every connection needs, and transactions.

The connection runs in autocommit mode and every store call opens its own
transaction, so a call is all-or-nothing and nothing is left open between calls
(an open read transaction would pin an old WAL snapshot and grow the file).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.store.errors import StoreError

# How long a call waits for another connection's write lock (a second window, the
# local server, a user's sqlite3 shell) before it gives up with "database is locked".
BUSY_TIMEOUT_S = 10.0

# SQLite's primary result codes (an extended code keeps one in its low byte).
_BUSY, _LOCKED, _READONLY, _CORRUPT, _NOT_A_DATABASE = 5, 6, 8, 11, 26


def problem_sentence(path: Path, exc: sqlite3.Error) -> str:
    """What a SQLite error means for the user's conversations, and what to do about it."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_BUSY, _LOCKED) or "locked" in str(exc) or "busy" in str(exc):
        return (
            "The conversations database is locked by another program "
            f"(waited {BUSY_TIMEOUT_S:.0f} s); close it and try again."
        )
    if code == _READONLY:
        return (
            f"SpecChat cannot write its conversations database {path} ({exc}): the file "
            f"or its folder is read-only. Check the permissions of {path.parent}."
        )
    if code in (_CORRUPT, _NOT_A_DATABASE):
        return damaged_sentence(path, str(exc))
    return f"The conversations database failed: {exc}"


def damaged_sentence(path: Path, detail: str) -> str:
    return (
        f"The conversations database {path} is damaged ({detail}). Move it elsewhere "
        "(SpecChat then starts with no conversations) or put back a backup; "
        f"`sqlite3 {path.name} .recover` may rescue its conversations."
    )


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` in WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            # The store guards the connection with its own lock, so the window may
            # call it from an executor thread as well as the GUI thread.
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot open the conversations database {path}: {exc}") from exc
    try:
        # WAL lets readers (another process, an export) work while an answer is
        # being written, and keeps every committed append after a crash.
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(
                f"The conversations database {path} cannot use write-ahead logging "
                f"(journal mode stays {mode!r}); is it on a network drive?"
            )
        # NORMAL in WAL mode survives a crash of the app (only a power cut may lose
        # the last commits) and avoids an fsync per streamed flush.
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        # A damaged page would otherwise surface in the middle of building the window
        # (listing conversations) with no way to say so; a whole-file check costs about
        # 0.1 s per 100 MB (measured on 137 MB).
        verdict = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise StoreError(damaged_sentence(path, " ".join(str(verdict).split())))
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise StoreError(problem_sentence(path, exc)) from exc
    except StoreError:
        connection.close()
        raise
    return connection


class Database:
    """One connection plus a lock; ``write()`` and ``read()`` each wrap one transaction."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that
        # reads first and then writes can fail with SQLITE_BUSY without waiting.
        with self._lock:
            yield from self._transaction("BEGIN IMMEDIATE")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        # One snapshot for all the queries of a call, so a conversation is never
        # read half before and half after another connection's commit.
        with self._lock:
            yield from self._transaction("BEGIN")

    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        try:
            self.connection.execute(begin)
            try:
                yield self.connection
                self.connection.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT, or the next BEGIN would find this one open.
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(problem_sentence(self.path, exc)) from exc

    def close(self) -> None:
        with self._lock:
            self.connection.close()
