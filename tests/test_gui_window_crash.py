"""The engine process dies or refuses: the window stays, says why, keeps the text, reloads."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from PySide6.QtCore import Qt

from core.store import StoreError
from core.worker import protocol
from tests.conftest import TinyModels
from tests.gui_window_support import (
    GREEDY,
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    long_answer_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    tiny_request,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]


def test_worker_killed_mid_answer_keeps_partial_answer_and_reloads(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    # Still streaming when the process is killed.
    window = long_answer_window(qtbot, qloop, window_files, tiny_models.target, tiny_models.draft)
    worker = window.bridge.worker
    assert worker is not None and worker.pid is not None

    async def send_then_kill() -> None:
        task = asyncio.ensure_future(window.controller.send_async("Keep talking"))
        await wait_until(
            lambda: (
                bool(window.chat_view.answers())
                and len(window.chat_view.answers()[0].trace.tokens) > 5
            )
        )
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        await task

    run(qloop, send_then_kill())

    # The window survives and says what happened, in words.
    assert window.isVisible()
    answer = window.chat_view.answers()[0]
    assert answer.text()
    assert "Interrupted" in answer.status_label.text()
    assert window.crash_banner.isVisible()
    assert window.pair_label.text() == "Engine stopped"
    banner = window.crash_banner.message.text()
    assert "SIGKILL" in banner or "killed" in banner.lower()
    assert "kept" in banner
    # The partial answer is stored and marked.
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    stored = window.store.load_conversation(conversation_id).messages[-1]
    assert stored.interrupted and stored.finished is None
    assert stored.text == answer.text()
    assert not window.controller.busy

    # Sending now points to the banner's Reload, and the text waits in the input.
    run(qloop, window.controller.send_async("Still there?"))
    assert window.statusBar().currentMessage().startswith("The engine stopped: Reload models")
    assert window.input_box.toPlainText() == "Still there?"
    window.input_box.clear()

    # Reload starts a new engine process with the same pair, and chat goes on.
    qtbot.mouseClick(window.crash_banner.reload_button, Qt.MouseButton.LeftButton)
    run(qloop, wait_until(lambda: window.bridge.current_pair() is not None))
    assert not window.crash_banner.isVisible()
    assert window.pair_label.text().startswith("tiny-target.gguf + tiny-draft.gguf")
    assert window.bridge.worker is not None and window.bridge.worker.pid != worker.pid
    window.controller._settings = lambda: GREEDY
    run(qloop, window.controller.send_async("Are you back?"))
    messages = window.store.load_conversation(conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1].finished is not None and not messages[-1].interrupted
    close_window(qloop, window)


def test_incompatible_draft_is_refused_with_its_explanation(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    refusals: list[str] = []
    window.bridge.load_failed.connect(refusals.append)
    request = tiny_request(tiny_models.target, tiny_models.other_vocab)
    assert run(qloop, window.bridge.load(request)) is None
    assert len(refusals) == 1
    assert "cannot draft for" in refusals[0]
    assert "tiny-other-vocab" in refusals[0]
    # The model panel shows the same sentence; nothing is loaded, so sending explains.
    assert window.model_panel.status_label.text() == refusals[0]
    assert window.bridge.current_pair() is None
    assert "Load a model pair" in window.controller.ready_reason()

    # With a good pair loaded, the refusal leaves it loaded and usable.
    good = run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    assert good is not None
    assert run(qloop, window.bridge.load(request)) is None
    assert "cannot draft for" in refusals[-1]
    assert window.bridge.current_pair() == good
    run(qloop, window.controller.send_async("Still there?"))
    assert window.chat_view.answers()[-1].trace.is_finished
    close_window(qloop, window)


def test_closing_mid_answer_saves_it_and_stops_the_engine(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = long_answer_window(qtbot, qloop, window_files, tiny_models.target, tiny_models.draft)
    worker = window.bridge.worker
    assert worker is not None

    async def send_then_quit() -> None:
        window.controller.send("Keep talking")  # as the input box does: a task it owns
        await wait_until(
            lambda: (
                bool(window.chat_view.answers())
                and len(window.chat_view.answers()[0].trace.tokens) > 5
            )
        )
        window.close()
        await window.shutdown()

    run(qloop, send_then_quit())
    assert not worker.running
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    stored = window.store.load_conversation(conversation_id).messages[-1]
    # Stopped cleanly: the engine's own ending, with the text and stats so far.
    assert stored.text == window.chat_view.answers()[0].text() and stored.text
    assert stored.finished is not None and stored.finished["stop_reason"] == "cancelled"
    window.store.close()


def test_cancelling_a_load_leaves_nothing_loaded_and_the_window_usable(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels, monkeypatch
) -> None:
    monkeypatch.setenv(protocol.TEST_HOOKS_ENV, "1")
    window = open_window(qtbot, window_files)
    worker = run(qloop, window.bridge.ensure_started())
    worker._test_progress_delay_s = 0.2  # a slow load, so there is time to cancel it
    progress: list[float] = []
    window.bridge.load_progress.connect(lambda _which, fraction: progress.append(fraction))
    window.model_panel.load_requested.emit(tiny_request(tiny_models.target, tiny_models.draft))
    run(qloop, wait_until(lambda: bool(progress)))
    assert window.bridge.busy and window.pair_label.text().startswith("Loading")
    window.model_panel.cancel_load_requested.emit()
    run(qloop, wait_until(lambda: not window.bridge.busy))
    assert window.bridge.current_pair() is None
    assert window.pair_label.text() == "No model loaded"
    assert not window.crash_banner.isVisible()

    # A load after the cancel works.
    worker._test_progress_delay_s = 0.0
    assert run(qloop, window.bridge.load(tiny_request(tiny_models.target, None))) is not None
    close_window(qloop, window)


def test_a_store_that_fails_mid_answer_ends_it_in_words_and_chat_goes_on(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    """The disk fills while an answer streams: the flush that cannot be written ends
    the answer, marked interrupted with the database's reason, and the next message
    streams as usual."""
    window = open_window(qtbot, window_files, settings=GREEDY.with_changes(n_predict=200))
    pair = tiny_request(tiny_models.target, tiny_models.draft)
    assert run(qloop, window.bridge.load(pair)) is not None
    append_steps = window.store.append_steps
    commits = 0

    def disk_fills(message_id: int, steps: list) -> None:  # type: ignore[type-arg]
        nonlocal commits
        commits += 1
        if commits > 1:
            raise StoreError("The conversations database failed: database or disk is full")
        append_steps(message_id, steps)

    window.store.append_steps = disk_fills  # type: ignore[method-assign]
    statuses: list[str] = []
    window.controller.message_failed.connect(statuses.append)
    run(qloop, window.controller.send_async("Keep talking"))

    answer = window.chat_view.answers()[0]
    assert answer.finished and answer.text()
    assert "disk is full" in answer.status_label.text()
    assert any("disk is full" in status for status in statuses)
    assert not window.controller.busy
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    stored = window.store.load_conversation(conversation_id).messages[-1]
    assert stored.interrupted and stored.text and answer.text().startswith(stored.text)

    window.store.append_steps = append_steps  # type: ignore[method-assign]
    run(qloop, window.controller.send_async("Go on"))
    answers = window.chat_view.answers()
    assert len(answers) == 2 and answers[1].finished and answers[1].text()
    assert answers[1].stats is not None
    close_window(qloop, window)
