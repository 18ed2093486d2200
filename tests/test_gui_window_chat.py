"""The window end to end with the real engine process on tiny models: send, stream,
colour, store, reopen; stop; regenerate; edit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.engine.chat_template import ChatMessage
from core.engine.config import DraftSource
from core.engine.events import Provenance, StopReason
from tests.conftest import TinyModels
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    count_flushes,
    format_errors,
    long_answer_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    tiny_request,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]


def test_send_streams_coloured_answer_that_survives_reopening(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    assert "Load a model pair" in window.chat_view.placeholder.text()
    pair = run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    assert pair is not None and pair.draft_path is not None
    assert "tiny-target" in window.model_panel.status_label.text()
    assert window.chat_view.placeholder.text().startswith("Type a message")

    window.new_chat()
    flushes = count_flushes(window)
    run(qloop, window.controller.send_async("Tell me a story"))

    answers = window.chat_view.answers()
    assert len(answers) == 1
    answer = answers[0]
    trace = answer.trace
    assert trace.is_finished and len(trace.tokens) > 0
    # Speculation happened and every provenance the engine reported is drawn as such.
    provenances = {info.provenance for info in trace.tokens}
    assert Provenance.DRAFT_ACCEPTED in provenances
    assert format_errors(answer) == []
    assert answer.token_view.document().toPlainText() == trace.text
    # Steps reach the view and the store in flushes (one commit each), never per token.
    assert flushes and sum(flushes) == trace.n_steps and len(flushes) <= trace.n_steps
    # Hovering a token explains it.
    assert "Step 1" in answer.tooltip_at(0)

    # Stats under the answer and in the speculation panel.
    assert answer.readout.isVisible()
    assert "n_drafted" in answer.readout.text()
    stats = answer.stats
    assert stats is not None and stats.n_predict == len(trace.tokens)

    # Stored as it streamed, with its totals.
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    stored = window.store.load_conversation(conversation_id)
    assert [m.role for m in stored.messages] == ["user", "assistant"]
    assert stored.messages[1].text == trace.text
    assert stored.messages[1].finished is not None and not stored.messages[1].interrupted
    assert len(stored.messages[1].steps) == trace.n_steps
    assert window.sidebar.conversation_ids() == [conversation_id]

    expected_provenance = [info.provenance for info in trace.tokens]
    readout_text = answer.readout.text()
    close_window(qloop, window)

    again = open_window(qtbot, window_files)
    assert again.controller.conversation_id == conversation_id
    reopened = again.chat_view.answers()
    assert len(reopened) == 1
    assert [info.provenance for info in reopened[0].trace.tokens] == expected_provenance
    assert reopened[0].text() == trace.text
    assert format_errors(reopened[0]) == []
    assert reopened[0].readout.isVisible() and reopened[0].readout.text() == readout_text
    assert again.speculation.showing_conversation or again.speculation is not None
    close_window(qloop, again)


def test_stop_mid_answer_keeps_the_text(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = long_answer_window(qtbot, qloop, window_files, tiny_models.target, tiny_models.draft)

    async def send_then_stop() -> None:
        task = asyncio.ensure_future(window.controller.send_async("Count"))
        await wait_until(
            lambda: (
                bool(window.chat_view.answers())
                and bool(window.chat_view.answers()[0].trace.tokens)
            )
        )
        assert window.stop_button.isVisible() and window.stop_shortcut.isEnabled()
        # Esc stops the answer from anywhere in the window, not only the input box.
        window.activateWindow()
        window.chat_view.setFocus()
        QTest.keyClick(window.chat_view, Qt.Key.Key_Escape)
        await task

    run(qloop, send_then_stop())
    answer = window.chat_view.answers()[0]
    assert answer.trace.finished is not None
    assert answer.trace.finished.stop_reason is StopReason.CANCELLED
    assert 0 < len(answer.trace.tokens) < 5000
    assert "Stopped by you" in answer.status_label.text()
    stored = window.store.load_conversation(window.controller.conversation_id or -1).messages[-1]
    assert stored.text == answer.text() and stored.finished is not None
    assert not window.controller.busy and window.send_button.isVisible()
    assert not window.stop_shortcut.isEnabled()
    close_window(qloop, window)


def test_regenerate_and_edit_replace_the_branch(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    assert run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    run(qloop, window.controller.send_async("First question"))
    first = window.chat_view.answers()[0]
    assert first.regenerate_button.isVisibleTo(first)

    run(qloop, window.controller.regenerate_async(first.message_id))
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    messages = window.store.load_conversation(conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].id != first.message_id
    # Greedy with the same prompt: the same answer again.
    assert messages[1].text == first.text()
    assert [w.message_id for w in window.chat_view.messages()] == [m.id for m in messages]

    run(qloop, window.controller.send_async("Second question"))
    assert len(window.store.load_conversation(conversation_id).messages) == 4

    # Edit the first question: everything after it is replaced by one new answer.
    user_id = messages[0].id
    run(qloop, window.controller.edit_and_resend_async(user_id, "A different first question"))
    messages = window.store.load_conversation(conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].id == user_id and messages[0].text == "A different first question"
    assert messages[1].finished is not None
    widgets = window.chat_view.messages()
    assert [w.message_id for w in widgets] == [m.id for m in messages]
    close_window(qloop, window)


def test_changing_the_draft_keeps_the_target_and_applies_to_the_next_answer(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files, settings=None)  # the panel's own settings
    loaded = run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    assert loaded is not None
    worker_pid = window.bridge.worker.pid if window.bridge.worker else None

    no_draft = tiny_request(tiny_models.target, None)
    window.model_panel.draft_change_requested.emit(no_draft)
    run(qloop, wait_until(lambda: window.bridge.last_request == no_draft))
    pair = window.bridge.current_pair()
    assert pair is not None and pair.draft_path is None
    assert window.bridge.worker is not None and window.bridge.worker.pid == worker_pid
    # The draft settings panel now gives answers for this pair: plain decoding.
    assert window.generation_settings().drafting.source is DraftSource.NONE

    run(qloop, window.controller.send_async("Hello"))
    tokens = window.chat_view.answers()[-1].trace.tokens
    assert tokens and {info.provenance for info in tokens} == {Provenance.TARGET_ONLY}
    close_window(qloop, window)


def test_a_system_prompt_typed_just_before_sending_reaches_the_model(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    assert run(qloop, window.bridge.load(tiny_request(tiny_models.target, tiny_models.draft)))
    worker = window.bridge.current_worker()
    assert worker is not None
    seen: list[list[ChatMessage]] = []
    tokenize_chat = worker.tokenize_chat

    async def spying_tokenize_chat(messages: Sequence[ChatMessage]) -> list[int]:
        seen.append(list(messages))
        return await tokenize_chat(messages)

    worker.tokenize_chat = spying_tokenize_chat  # type: ignore[method-assign]
    window.new_chat()
    # Typed, then sent at once: before the editor's delayed save has run.
    window.system_prompt.setPlainText("Answer like a pirate.")
    window.input_box.setPlainText("Hello")
    window.input_box.submit()
    run(qloop, wait_until(lambda: bool(window.chat_view.answers()) and not window.controller.busy))
    assert seen and seen[-1][0] == ChatMessage("system", "Answer like a pirate.")

    # The same for Regenerate and for an edited message.
    window.system_prompt.setPlainText("Answer like a poet.")
    window.controller.regenerate(window.chat_view.answers()[-1].message_id)
    run(qloop, wait_until(lambda: not window.controller.busy))
    assert seen[-1][0] == ChatMessage("system", "Answer like a poet.")
    window.system_prompt.setPlainText("Answer in French.")
    window.controller.edit_and_resend(window.chat_view.messages()[0].message_id, "Bonjour")
    run(qloop, wait_until(lambda: not window.controller.busy))
    assert seen[-1][0] == ChatMessage("system", "Answer in French.")
    close_window(qloop, window)
