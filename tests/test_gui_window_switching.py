"""Other conversations stay open to the user while an answer is written: it goes on
in the background and shows live again when its conversation is opened."""

from __future__ import annotations

import pytest

from core.engine.events import StopReason
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


def test_an_answer_goes_on_while_other_conversations_are_open(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    # Stopped long before its end.
    window = long_answer_window(qtbot, qloop, window_files, tiny_models.target, tiny_models.draft)
    other = window.controller.new_conversation()
    window.store.add_user_message(other, "an older question")
    window.new_chat()
    answering = window.controller.conversation_id
    assert answering is not None

    def tokens_on_screen() -> int:
        answers = window.chat_view.answers()
        return len(answers[-1].trace.tokens) if answers else 0

    def stored_answer_text() -> str:
        return window.store.load_conversation(answering).messages[-1].text

    window.input_box.setPlainText("Keep talking")
    window.input_box.submit()
    run(qloop, wait_until(lambda: tokens_on_screen() > 5))

    # Another conversation opens; the answer goes on (and on into the store).
    window.sidebar.selected.emit(other)
    assert window.controller.conversation_id == other
    assert [m.message_id for m in window.chat_view.messages()] == [
        m.id for m in window.store.load_conversation(other).messages
    ]
    assert window.controller.busy and window.stop_button.isVisible()
    assert "goes on" in window.statusBar().currentMessage()
    marked = window.sidebar.answering_row()
    assert marked is not None and window.sidebar.conversation_ids()[marked] == answering
    # Its conversation cannot be deleted under it; the one on screen can.
    window.sidebar.delete_requested.emit(answering)
    assert answering in window.sidebar.conversation_ids()
    stored_before = len(stored_answer_text())
    run(qloop, wait_until(lambda: len(stored_answer_text()) > stored_before + 20))

    # A new chat too.
    window.new_chat_action.trigger()
    assert window.controller.conversation_id not in (other, answering)
    assert window.chat_view.messages() == []

    # Back: the answer is on screen again, all of it so far, and still growing.
    window.sidebar.selected.emit(answering)
    answer = window.chat_view.answers()[-1]
    assert answer.token_view.document().toPlainText() == answer.trace.text
    assert len(answer.trace.text) > stored_before
    shown = tokens_on_screen()
    run(qloop, wait_until(lambda: tokens_on_screen() > shown + 20))
    assert answer.token_view.document().toPlainText() == answer.trace.text
    assert window.speculation.streaming

    window.sidebar.selected.emit(other)
    assert "goes on" in window.statusBar().currentMessage()
    window.controller.stop()
    run(qloop, wait_until(lambda: not window.controller.busy))
    assert "goes on" not in window.statusBar().currentMessage()  # it has ended
    window.sidebar.selected.emit(answering)
    answer = window.chat_view.answers()[-1]
    assert answer.trace.finished is not None
    assert answer.trace.finished.stop_reason is StopReason.CANCELLED
    assert "Stopped by you" in answer.status_label.text()
    assert stored_answer_text() == answer.text()
    assert window.sidebar.answering_row() is None
    close_window(qloop, window)


def test_an_answer_that_ends_off_screen_shows_finished_when_opened(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files, settings=GREEDY.with_changes(n_predict=400))
    assert run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    other = window.controller.new_conversation()
    window.store.rename(other, "Another conversation")
    window.new_chat()
    answering = window.controller.conversation_id
    assert answering not in (None, other)
    window.input_box.setPlainText("Tell me more")
    window.input_box.submit()
    run(qloop, wait_until(lambda: window.controller._running is not None))
    window.open_conversation(other)
    run(qloop, wait_until(lambda: not window.controller.busy))
    assert window.chat_view.messages() == []  # nothing of the answer leaked into this view

    window.open_conversation(answering)
    answer = window.chat_view.answers()[-1]
    stored = window.store.load_conversation(answering).messages[-1]
    assert stored.finished is not None and not stored.interrupted
    assert answer.text() == stored.text and answer.stats is not None
    assert answer.readout.isVisibleTo(answer)
    close_window(qloop, window)
