"""Answers written while they stream: steps, text, finish, crashes, edit and regenerate."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.engine.events import Provenance, StopReason
from core.store import ConversationStore, NotFoundError, StoreError
from tests.support.stored_answers import MODEL_PAIR, SETTINGS, finished, step

pytest_plugins = ["tests.store_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_answer_streams_in_and_reopens_from_a_fresh_connection(
    store: ConversationStore,
) -> None:
    conversation = store.create_conversation(system_prompt="Be kind.")
    question = store.add_user_message(conversation, "Say hello")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    first = [(step("Hel", "lo"), 0.05), (step(",", rejected=("!",)), 0.09)]
    second = [(step(" world", last=Provenance.TARGET_BONUS), 0.12)]
    store.append_steps(answer, first)
    store.append_steps(answer, [])  # an empty flush is harmless
    store.append_steps(answer, second)
    store.finish_answer(answer, finished())

    with ConversationStore(store.path) as reopened:
        loaded = reopened.load_conversation(conversation)
    user, assistant = loaded.messages
    assert (user.id, user.role, user.text, user.steps) == (question, "user", "Say hello", [])
    assert (user.settings, user.model_pair, user.finished) == (None, None, None)
    assert assistant.id == answer
    assert assistant.text == "Hello, world"
    assert assistant.steps == first + second
    assert assistant.settings == SETTINGS
    assert assistant.model_pair == MODEL_PAIR
    assert assistant.finished == finished()
    assert assistant.interrupted is False
    assert user.created_at <= assistant.created_at


def test_a_finished_answer_takes_no_more_steps(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    question = store.add_user_message(conversation, "hi")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.finish_answer(answer, finished())
    with pytest.raises(StoreError, match="finished"):
        store.append_steps(answer, [(step("late"), 1.0)])
    with pytest.raises(StoreError, match="user"):
        store.append_steps(question, [(step("x"), 1.0)])
    with pytest.raises(NotFoundError):
        store.append_steps(9999, [(step("x"), 1.0)])


def test_cancelled_and_interrupted_answers(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "Count")
    stopped = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(stopped, [(step("1, 2,"), 0.1)])
    store.finish_answer(stopped, finished(stop_reason=StopReason.CANCELLED))
    store.add_user_message(conversation, "Again")
    crashed = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(crashed, [(step("1, 2, 3"), 0.1)])
    # The worker died: no FinishedEvent, so the answer is interrupted whatever the caller says.
    store.finish_answer(crashed, None)

    messages = {m.id: m for m in store.load_conversation(conversation).messages}
    assert messages[stopped].interrupted is False
    stopped_end = messages[stopped].finished
    assert stopped_end is not None and stopped_end["stop_reason"] == "cancelled"
    assert (messages[crashed].text, messages[crashed].finished) == ("1, 2, 3", None)
    assert messages[crashed].interrupted is True


def test_answers_left_open_by_a_crash_are_marked_interrupted(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "hi")
    done = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.finish_answer(done, finished())
    store.add_user_message(conversation, "more")
    open_answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(open_answer, [(step("partial"), 0.1)])

    assert store.mark_unfinished_answers_interrupted() == 1
    assert store.mark_unfinished_answers_interrupted() == 0
    messages = {m.id: m for m in store.load_conversation(conversation).messages}
    assert messages[open_answer].interrupted and not messages[done].interrupted


CRASHING_WRITER = """
import os, signal, sys
from pathlib import Path
from core.store import ConversationStore
from tests.support.stored_answers import MODEL_PAIR, SETTINGS, step

store = ConversationStore(Path(sys.argv[1]))
conversation = store.create_conversation()
store.add_user_message(conversation, "Write a poem")
answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
for index in range(50):
    store.append_steps(answer, [(step(f"line {index}\\n"), index * 0.01)])
print(conversation, flush=True)
sys.stdin.readline()  # wait to be killed, connection still open
"""


def test_a_killed_process_keeps_every_flushed_step(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdin is not None
    conversation = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdin.close()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    with ConversationStore(path) as store:
        answer = store.load_conversation(conversation).messages[1]
        assert len(answer.steps) == 50
        assert answer.text == "".join(f"line {index}\n" for index in range(50))
        assert (answer.finished, answer.interrupted) == (None, False)
        assert store.mark_unfinished_answers_interrupted() == 1


def test_two_connections_write_at_once(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "hi")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)

    def other_writer() -> None:
        with ConversationStore(store.path) as other:
            for index in range(30):
                other.rename(conversation, f"title {index}")

    thread = threading.Thread(target=other_writer)
    thread.start()
    for index in range(30):
        store.append_steps(answer, [(step(f"{index} "), index * 0.01)])
    thread.join()
    loaded = store.load_conversation(conversation)
    assert loaded.title == "title 29"
    assert len(loaded.messages[1].steps) == 30


def test_edit_replaces_the_branch_that_follows(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    first = store.add_user_message(conversation, "What is 2+2?")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(answer, [(step("4"), 0.1)])
    store.finish_answer(answer, finished())
    store.add_user_message(conversation, "And 3+3?")
    later = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.finish_answer(later, finished())

    store.edit_user_message(first, "What is 2+3?")
    messages = store.load_conversation(conversation).messages
    assert [(m.id, m.text) for m in messages] == [(first, "What is 2+3?")]
    # The new branch continues after the edited message.
    new_answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(new_answer, [(step("5"), 0.1)])
    assert [m.text for m in store.load_conversation(conversation).messages] == ["What is 2+3?", "5"]
    count = store._db.connection.execute("SELECT COUNT(*) FROM answer_steps").fetchone()[0]
    assert count == 1  # the old answers' steps went with them

    with pytest.raises(StoreError, match="only user messages"):
        store.edit_user_message(new_answer, "not mine")


def test_regenerate_drops_the_answer_after_the_question(store: ConversationStore) -> None:
    conversation = store.create_conversation()
    store.add_user_message(conversation, "One")
    store.finish_answer(store.begin_answer(conversation, SETTINGS, MODEL_PAIR), finished())
    question = store.add_user_message(conversation, "Two")
    old = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(old, [(step("old answer"), 0.1)])
    store.finish_answer(old, finished())

    store.delete_messages_after(question)
    fresh = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(fresh, [(step("new answer"), 0.1)])
    store.finish_answer(fresh, finished())
    messages = store.load_conversation(conversation).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert (messages[-1].id, messages[-1].text) == (fresh, "new answer")
    assert old not in [m.id for m in messages]


def test_a_database_locked_too_long_gives_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.store.database.BUSY_TIMEOUT_S", 0.2)
    with ConversationStore(tmp_path / "c.sqlite3") as store:
        conversation = store.create_conversation()
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        with pytest.raises(StoreError, match="locked by another program"):
            store.add_user_message(conversation, "hi")
        # Reading still works while someone writes (WAL), and writing once they are done.
        assert store.load_conversation(conversation).messages == []
        holder.execute("ROLLBACK")
        holder.close()
        store.add_user_message(conversation, "hi")
        assert len(store.load_conversation(conversation).messages) == 1


def test_checkpoints_run_off_the_writing_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.store.checkpointer.CHECKPOINT_INTERVAL_S", 0.02)
    path = tmp_path / "c.sqlite3"
    with ConversationStore(path) as store:
        writer = store._db.connection
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        size_before = path.stat().st_size
        conversation = store.create_conversation()
        store.add_user_message(conversation, "x" * 50_000)
        # The commit went to the log only; the background thread copies it over.
        deadline = time.monotonic() + 10
        while path.stat().st_size <= size_before + 40_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size > size_before + 40_000
        checkpoint_thread = store._checkpointer._thread
    # This store's thread, not any other store's that another test left open.
    assert not checkpoint_thread.is_alive()
