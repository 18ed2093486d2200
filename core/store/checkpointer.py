"""Moves the write-ahead log into the database file on a background thread.

SQLite's automatic checkpoint runs inside the commit that crosses the WAL's size
limit: that commit copies the log into the database and fsyncs it, which takes
tens of milliseconds on a busy disk. The store commits from the GUI thread while
an answer streams, so the window would stutter every few hundred flushes. Here
the store's own connection never checkpoints; a thread with its own connection
does, in PASSIVE mode, which never blocks the writer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
# After a checkpoint lets the log start over, SQLite truncates the file to this size,
# so one long answer does not leave a large -wal file behind.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024


class Checkpointer:
    """A daemon thread checkpointing ``path`` every second until ``stop()``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="specchat-store-checkpoint", daemon=True
        )

    def start(self, writer: sqlite3.Connection) -> None:
        """Take checkpointing away from ``writer`` and start the thread."""
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            logger.warning("conversations database: no background checkpoints: %s", exc)
            return
        try:
            while not self._stopping.wait(CHECKPOINT_INTERVAL_S):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    # Try again next time; until then the log only grows.
                    logger.warning("conversations database checkpoint failed: %s", exc)
        finally:
            connection.close()
