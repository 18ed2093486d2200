"""Conversations, their messages and each answer's streamed steps, in SQLite.

Every public method is one transaction. An answer is written while it streams:
``begin_answer`` creates the message, each ``append_steps`` commits the flushed
steps, and ``finish_answer`` stores the totals. A crash of the window or the
worker therefore loses at most the steps since the last flush.

The steps are the answer's text. While an answer is open its text is read from
them; closing it (``finish_answer``, ``mark_unfinished_answers_interrupted``)
copies the text into the message row once, for search and previews. Appending
to the row's text on every flush would rewrite the whole growing text each time
(SQLite rewrites a row's overflow pages on update): a flush would cost more the
longer the answer, where the window needs it flat.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from core import paths
from core.store.checkpointer import Checkpointer
from core.store.database import Database, open_database, problem_sentence
from core.store.errors import NotFoundError, StoreError
from core.store.export import conversation_to_json, conversation_to_markdown
from core.store.migrations import migrate
from core.store.records import (
    Conversation,
    ConversationHeader,
    ConversationSummary,
    Role,
    StoredMessage,
    StoredStep,
)
from core.store.search import preview, register_search_function

DATABASE_NAME = "conversations.sqlite3"
DEFAULT_TITLE = "New chat"
# A conversation still called DEFAULT_TITLE is named after its first message, cut here.
AUTO_TITLE_CHARS = 48


def default_path() -> Path:
    return paths.data_dir() / DATABASE_NAME


def _to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _step_text(step: dict[str, Any]) -> str:
    return "".join(token[1] for token in step["tokens"])


def _steps_text(steps: list[StoredStep]) -> str:
    return "".join(_step_text(step) for step, _ in steps)


def _is_open(role: str, finished: str | None, interrupted: int) -> bool:
    return role == "assistant" and finished is None and not interrupted


def _auto_title(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= AUTO_TITLE_CHARS:
        return words or DEFAULT_TITLE
    cut = words[:AUTO_TITLE_CHARS].rsplit(" ", 1)[0] or words[:AUTO_TITLE_CHARS]
    return cut + "…"


class ConversationStore:
    """The conversations database. Safe to open from several connections/processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_path()
        connection = open_database(self.path)
        try:
            migrate(connection)
        except sqlite3.Error as exc:
            connection.close()
            raise StoreError(problem_sentence(self.path, exc)) from exc
        except BaseException:
            connection.close()
            raise
        register_search_function(connection)
        self._db = Database(connection, self.path)
        self._checkpointer = Checkpointer(self.path)
        self._checkpointer.start(connection)

    def close(self) -> None:
        self._checkpointer.stop()
        self._db.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Conversations

    def create_conversation(self, title: str = DEFAULT_TITLE, system_prompt: str = "") -> int:
        now = time.time()
        with self._db.write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, system_prompt, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (title, system_prompt, now, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def list_conversations(self, search: str = "") -> list[ConversationSummary]:
        """Live (not deleted) conversations, most recently updated first.

        ``search`` matches titles and message text, ignoring case (Unicode-aware).
        """
        needle = search.strip()
        with self._db.read() as db:
            rows = db.execute(
                """
                SELECT c.id, c.title, c.created_at, c.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id),
                    (SELECT m.text FROM messages m WHERE m.conversation_id = c.id
                        AND m.text != '' ORDER BY m.position DESC LIMIT 1),
                    CASE WHEN :needle = '' THEN NULL ELSE
                        (SELECT m.text FROM messages m WHERE m.conversation_id = c.id
                            AND specchat_contains(m.text, :needle)
                            ORDER BY m.position LIMIT 1)
                    END AS match_text
                FROM conversations c
                WHERE c.deleted_at IS NULL
                    AND (:needle = '' OR specchat_contains(c.title, :needle)
                        OR match_text IS NOT NULL)
                ORDER BY c.updated_at DESC, c.id DESC
                """,
                {"needle": needle},
            ).fetchall()
        return [
            ConversationSummary(
                id=row[0],
                title=row[1],
                created_at=row[2],
                updated_at=row[3],
                message_count=row[4],
                preview=preview(row[6], needle) if row[6] is not None else preview(row[5] or ""),
            )
            for row in rows
        ]

    def conversation_header(self, conversation_id: int) -> ConversationHeader:
        """Title, system prompt and times, without reading any message."""
        with self._db.read() as db:
            return self._header(db, conversation_id)

    def load_conversation(self, conversation_id: int) -> Conversation:
        """The conversation with every message and step; soft-deleted ones load too."""
        with self._db.read() as db:
            header = self._header(db, conversation_id)
            message_rows = db.execute(
                "SELECT id, role, text, created_at, finished, interrupted, settings, model_pair "
                "FROM messages WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
            steps: dict[int, list[StoredStep]] = {}
            for message_id, at_s, step in db.execute(
                "SELECT s.message_id, s.at_s, s.step FROM answer_steps s "
                "JOIN messages m ON m.id = s.message_id WHERE m.conversation_id = ? "
                "ORDER BY s.message_id, s.step_index",
                (conversation_id,),
            ):
                steps.setdefault(message_id, []).append((json.loads(step), at_s))
        messages = [
            StoredMessage(
                id=m[0],
                role=m[1],
                # An open answer's text is still in its steps only (see the module's note).
                text=_steps_text(steps.get(m[0], [])) if _is_open(m[1], m[4], m[5]) else m[2],
                created_at=m[3],
                steps=steps.get(m[0], []),
                finished=_from_json(m[4]),
                interrupted=bool(m[5]),
                settings=_from_json(m[6]),
                model_pair=_from_json(m[7]),
            )
            for m in message_rows
        ]
        return Conversation(**vars(header), messages=messages)

    def rename(self, conversation_id: int, title: str) -> None:
        with self._db.write() as db:
            self._update_conversation(db, conversation_id, "title = ?", (title,))

    def set_system_prompt(self, conversation_id: int, text: str) -> None:
        with self._db.write() as db:
            self._update_conversation(db, conversation_id, "system_prompt = ?", (text,))

    def delete(self, conversation_id: int) -> None:
        """Soft delete: hidden from the list until ``restore`` or ``purge_deleted``."""
        with self._db.write() as db:
            # updated_at is left alone so an undone delete returns to its place.
            cursor = db.execute(
                "UPDATE conversations SET deleted_at = ? WHERE id = ?",
                (time.time(), conversation_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Conversation {conversation_id} does not exist.")

    def restore(self, conversation_id: int) -> None:
        with self._db.write() as db:
            cursor = db.execute(
                "UPDATE conversations SET deleted_at = NULL WHERE id = ?", (conversation_id,)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(
                    f"Conversation {conversation_id} was purged and cannot be restored."
                )

    def purge_deleted(self) -> None:
        """Remove soft-deleted conversations for good (messages and steps cascade)."""
        with self._db.write() as db:
            db.execute("DELETE FROM conversations WHERE deleted_at IS NOT NULL")

    # Messages

    def add_user_message(self, conversation_id: int, text: str) -> int:
        """Append the user's message; a conversation still called "New chat" is named after it."""
        with self._db.write() as db:
            message_id, position = self._insert_message(db, conversation_id, "user", text)
            if position == 0:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                    (_auto_title(text), conversation_id, DEFAULT_TITLE),
                )
            return message_id

    def begin_answer(
        self, conversation_id: int, settings: dict[str, Any], model_pair: dict[str, Any]
    ) -> int:
        """Create the (empty) assistant message that ``append_steps`` will fill."""
        with self._db.write() as db:
            message_id, _ = self._insert_message(
                db, conversation_id, "assistant", "", settings=settings, model_pair=model_pair
            )
            return message_id

    def append_steps(self, message_id: int, steps: list[StoredStep]) -> None:
        """Add flushed steps, each ``(event_to_dict(step), seconds since the answer began)``.

        The cost does not grow with the answer's length: the text is not rewritten here.
        """
        if not steps:
            return
        with self._db.write() as db:
            row = db.execute(
                "SELECT role, finished IS NOT NULL OR interrupted FROM messages WHERE id = ?",
                (message_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"Message {message_id} does not exist.")
            role, done = row
            if role != "assistant":
                raise StoreError(f"Message {message_id} is the user's; only answers have steps.")
            if done:
                raise StoreError(f"Answer {message_id} is finished; it takes no more steps.")
            first_index = db.execute(
                "SELECT COALESCE(MAX(step_index) + 1, 0) FROM answer_steps WHERE message_id = ?",
                (message_id,),
            ).fetchone()[0]
            db.executemany(
                "INSERT INTO answer_steps (message_id, step_index, at_s, step, text) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (message_id, first_index + offset, at_s, _to_json(step), _step_text(step))
                    for offset, (step, at_s) in enumerate(steps)
                ],
            )
            # The conversation's updated_at was set by begin_answer and is set again at
            # the finish; touching it here would add a page to every flush's commit.

    def finish_answer(
        self, message_id: int, finished: dict[str, Any] | None, interrupted: bool = False
    ) -> None:
        """Store the answer's end: ``event_to_dict(FinishedEvent)``, or None if the worker died.

        An answer that ends without a FinishedEvent is always marked interrupted.
        """
        with self._db.write() as db:
            row = db.execute(
                "SELECT conversation_id FROM messages WHERE id = ? AND role = 'assistant'",
                (message_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"Answer {message_id} does not exist.")
            db.execute(
                "UPDATE messages SET text = ?, finished = ?, interrupted = ? WHERE id = ?",
                (
                    self._text_of_steps(db, message_id),
                    _to_json(finished),
                    interrupted or finished is None,
                    message_id,
                ),
            )
            self._touch(db, row[0])

    def mark_unfinished_answers_interrupted(self) -> int:
        """Mark answers a crashed window left open as interrupted; return how many.

        Call once at start-up, before any answer of this session begins.
        """
        with self._db.write() as db:
            open_ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM messages "
                    "WHERE role = 'assistant' AND finished IS NULL AND interrupted = 0"
                )
            ]
            for message_id in open_ids:
                db.execute(
                    "UPDATE messages SET text = ?, interrupted = 1 WHERE id = ?",
                    (self._text_of_steps(db, message_id), message_id),
                )
            return len(open_ids)

    def edit_user_message(self, message_id: int, text: str) -> None:
        """Replace a user message's text and delete every later message (the old branch).

        A conversation named after its first message follows that message's edit; a
        title the user chose stays.
        """
        with self._db.write() as db:
            conversation_id, position, role = self._locate(db, message_id)
            if role != "user":
                raise StoreError(f"Message {message_id} is an answer; only user messages edit.")
            if position == 0:
                (old_text,) = db.execute(
                    "SELECT text FROM messages WHERE id = ?", (message_id,)
                ).fetchone()
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                    (_auto_title(text), conversation_id, _auto_title(old_text)),
                )
            db.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))
            self._delete_after(db, conversation_id, position)

    def delete_messages_after(self, message_id: int) -> None:
        """Delete every message after this one, e.g. the answer to regenerate."""
        with self._db.write() as db:
            conversation_id, position, _ = self._locate(db, message_id)
            self._delete_after(db, conversation_id, position)

    # Export

    def export_markdown(self, conversation_id: int) -> str:
        return conversation_to_markdown(self.load_conversation(conversation_id))

    def export_json(self, conversation_id: int) -> dict[str, Any]:
        return conversation_to_json(self.load_conversation(conversation_id))

    # Helpers; each runs inside the caller's transaction.

    def _insert_message(
        self,
        db: sqlite3.Connection,
        conversation_id: int,
        role: Role,
        text: str,
        settings: dict[str, Any] | None = None,
        model_pair: dict[str, Any] | None = None,
    ) -> tuple[int, int]:
        row = db.execute(
            "SELECT (SELECT COALESCE(MAX(position) + 1, 0) FROM messages "
            "WHERE conversation_id = c.id) FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"Conversation {conversation_id} does not exist.")
        position = row[0]
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, position, role, text, created_at, "
            "settings, model_pair) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                position,
                role,
                text,
                time.time(),
                _to_json(settings),
                _to_json(model_pair),
            ),
        )
        self._touch(db, conversation_id)
        assert cursor.lastrowid is not None
        return cursor.lastrowid, position

    def _header(self, db: sqlite3.Connection, conversation_id: int) -> ConversationHeader:
        row = db.execute(
            "SELECT id, title, system_prompt, created_at, updated_at, deleted_at "
            "FROM conversations WHERE id = ?",
            (conversation_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"Conversation {conversation_id} does not exist.")
        return ConversationHeader(*row)

    def _text_of_steps(self, db: sqlite3.Connection, message_id: int) -> str:
        return "".join(
            text
            for (text,) in db.execute(
                "SELECT text FROM answer_steps WHERE message_id = ? ORDER BY step_index",
                (message_id,),
            )
        )

    def _locate(self, db: sqlite3.Connection, message_id: int) -> tuple[int, int, str]:
        row = db.execute(
            "SELECT conversation_id, position, role FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"Message {message_id} does not exist.")
        return row[0], row[1], row[2]

    def _delete_after(self, db: sqlite3.Connection, conversation_id: int, position: int) -> None:
        db.execute(
            "DELETE FROM messages WHERE conversation_id = ? AND position > ?",
            (conversation_id, position),
        )
        self._touch(db, conversation_id)

    def _update_conversation(
        self, db: sqlite3.Connection, conversation_id: int, assignment: str, values: tuple[Any, ...]
    ) -> None:
        # updated_at is left alone: the list is ordered by the last message, and a
        # rename should not make a conversation jump to the top.
        cursor = db.execute(
            f"UPDATE conversations SET {assignment} WHERE id = ?", (*values, conversation_id)
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"Conversation {conversation_id} does not exist.")

    def _touch(self, db: sqlite3.Connection, conversation_id: int) -> None:
        db.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?", (time.time(), conversation_id)
        )
