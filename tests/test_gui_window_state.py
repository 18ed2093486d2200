"""Window state and settings persist; the sidebar, input keys and context check work."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QWidget

from core.chat import ContextFit
from core.engine.config import DraftSource
from core.engine.events import EmittedToken, Provenance, StepEvent, event_to_dict
from gui.chat.answer_controller import OverflowChoice
from gui.main_window import CHAT_MIN_WIDTH, SIDEBAR_MIN_WIDTH
from tests.conftest import TinyModels
from tests.gui_window_support import (
    GREEDY,
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    tiny_request,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

_ANSWER_STEP = StepEvent(
    tokens=(EmittedToken(1, "An old answer.", Provenance.TARGET_ONLY),),
    rejected=(),
    n_drafted=0,
    n_accepted=0,
    draft_ms=0.0,
    verify_ms=1.0,
)

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]


def test_window_state_and_display_settings_persist(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    window.resize(780, 560)  # the offscreen screen is 800 x 800
    window.splitter.setSizes([150, 360, 260])
    sizes = window.splitter.sizes()
    window.side_tabs.setCurrentIndex(1)
    window.set_show_rejected(True)
    window.markdown_action.setChecked(False)
    first = window.controller.new_conversation()
    window.system_prompt.setPlainText("Answer in one sentence.")
    window.controller.new_conversation()
    window.open_conversation(first)
    close_window(qloop, window)

    again = open_window(qtbot, window_files)
    assert (again.width(), again.height()) == (780, 560)
    assert again.splitter.sizes() == sizes
    assert again.side_tabs.currentIndex() == 1
    assert again.show_rejected_action.isChecked()
    assert not again.markdown_action.isChecked()
    assert again.controller.conversation_id == first
    assert again.system_prompt.toPlainText() == "Answer in one sentence."
    assert again.store.load_conversation(first).system_prompt == "Answer in one sentence."
    close_window(qloop, again)


def test_sidebar_rename_delete_undo_and_search(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    one = window.controller.new_conversation()
    two = window.controller.new_conversation()
    window.store.add_user_message(one, "tell me about tomatoes")
    window.refresh_conversations()
    window.sidebar.rename_requested.emit(two, "Renamed chat")
    assert window.store.load_conversation(two).title == "Renamed chat"
    assert window.windowTitle().startswith("Renamed chat")

    window.sidebar.search.setText("tomatoes")
    assert window.sidebar.conversation_ids() == [one]
    window.sidebar.search.clear()

    # Deleting the open conversation opens another one and offers undo.
    window.sidebar.delete_requested.emit(two)
    assert two not in window.sidebar.conversation_ids()
    assert window.controller.conversation_id == one
    assert window.sidebar.undo_bar.isVisible()
    qtbot.mouseClick(window.sidebar.undo_button, Qt.MouseButton.LeftButton)
    assert two in window.sidebar.conversation_ids()
    assert not window.sidebar.undo_bar.isVisible()
    assert window.controller.conversation_id == two  # it was open: it is again
    # Deleting one that is not open, from the Chat menu's neighbour, leaves the open one.
    window.sidebar.delete_requested.emit(one)
    qtbot.mouseClick(window.sidebar.undo_button, Qt.MouseButton.LeftButton)
    assert window.controller.conversation_id == two and one in window.sidebar.conversation_ids()

    # Ctrl+N makes a new chat.
    count = len(window.sidebar.conversation_ids())
    window.new_chat_action.trigger()
    assert len(window.sidebar.conversation_ids()) == count + 1
    close_window(qloop, window)


def test_new_chat_twice_leaves_one_empty_chat(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    window.new_chat_action.trigger()
    first = window.controller.conversation_id
    window.new_chat_action.trigger()
    window.new_chat_action.trigger()
    assert window.controller.conversation_id == first
    assert window.sidebar.conversation_ids() == [first]
    # Once it holds something (a system prompt, a name, a message) a new one is made.
    window.system_prompt.setPlainText("Be brief.")
    window.new_chat_action.trigger()
    second = window.controller.conversation_id
    assert second != first
    window.store.rename(second, "Kept for later")
    window.new_chat_action.trigger()
    assert window.controller.conversation_id not in (first, second)
    assert len(window.sidebar.conversation_ids()) == 3
    close_window(qloop, window)


def test_erasing_a_title_in_place_keeps_the_name(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    conversation = window.controller.new_conversation()
    window.store.rename(conversation, "Tomatoes")
    window.refresh_conversations()
    item = window.sidebar.list.item(0)
    item.setText("   ")  # as the in-place editor commits an erased title
    assert item.text() == "Tomatoes"
    assert window.store.conversation_header(conversation).title == "Tomatoes"
    item.setText("Potatoes")
    assert window.store.conversation_header(conversation).title == "Potatoes"
    close_window(qloop, window)


def test_the_window_opens_ready_to_type(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)
    assert QApplication.focusWidget() is window.input_box
    # Tab leaves the system prompt rather than typing into it.
    window.system_prompt_button.setChecked(True)
    window.system_prompt.setFocus()
    qtbot.keyClicks(window.system_prompt, "Be brief.")
    qtbot.keyClick(window.system_prompt, Qt.Key.Key_Tab)
    assert window.system_prompt.toPlainText() == "Be brief."
    assert QApplication.focusWidget() is not window.system_prompt
    close_window(qloop, window)


def test_input_keys(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    box = window.input_box
    sent: list[str] = []
    stops: list[bool] = []
    box.submitted.disconnect()
    box.stop_requested.disconnect()
    box.submitted.connect(sent.append)
    box.stop_requested.connect(lambda: stops.append(True))
    qtbot.keyClicks(box, "line one")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(box, "line two")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert sent == ["line one\nline two"] and box.toPlainText() == ""
    qtbot.keyClicks(box, "again")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert sent[-1] == "again"
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    assert stops == [True]
    close_window(qloop, window)


def _load_with_a_256_token_context(qloop, window, tiny_models: TinyModels) -> None:  # type: ignore[no-untyped-def]
    request = tiny_request(tiny_models.target, tiny_models.draft)
    small = type(request)(
        type(request.target)(tiny_models.target, n_ctx=256, n_threads=2), request.draft
    )
    assert run(qloop, window.bridge.load(small)) is not None


def _open_a_conversation_near_the_limit(window) -> int:  # type: ignore[no-untyped-def]
    """A new conversation of three earlier turns, stored directly, that together with
    a new message overflow a 256-token context."""
    conversation = window.controller.new_conversation()
    for turn in range(3):
        window.store.add_user_message(conversation, f"old question {turn} " + "word " * 10)
        answer = window.store.begin_answer(conversation, {}, {})
        window.store.append_steps(answer, [(event_to_dict(_ANSWER_STEP), 0.1)])
        window.store.finish_answer(answer, None, interrupted=True)
    window.controller.open_conversation(conversation)
    return int(conversation)


def test_overflowing_conversation_asks_and_drops_oldest_turns(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    asked: list[tuple[ContextFit, ContextFit | None]] = []

    choice = [OverflowChoice.DROP_OLDEST]

    async def drop_oldest(fit: ContextFit, reduced: ContextFit | None) -> OverflowChoice:
        asked.append((fit, reduced))
        return choice[0]

    window = open_window(qtbot, window_files, ask_overflow=drop_oldest)
    _load_with_a_256_token_context(qloop, window, tiny_models)
    window.controller._settings = lambda: GREEDY.with_changes(n_predict=32)
    conversation = _open_a_conversation_near_the_limit(window)
    run(qloop, window.controller.send_async("new question " + "word " * 5))

    assert len(asked) == 1
    fit, reduced = asked[0]
    assert not fit.fits and "exceeds the 256-token context" in fit.sentence()
    assert reduced is not None and reduced.fits and reduced.dropped_turns >= 1
    messages = window.store.load_conversation(conversation).messages
    # Nothing was removed from the conversation; only the prompt left turns out.
    assert len(messages) == 8 and messages[-1].finished is not None
    # The chat says which messages the model no longer sees: those of the dropped turns.
    hidden = [m.hidden_label.isVisibleTo(m) for m in window.chat_view.messages()]
    assert hidden == [True] * (2 * reduced.dropped_turns) + [False] * (
        8 - 2 * reduced.dropped_turns
    )

    # "Start a new chat": the question opens a new conversation; the old one stays.
    choice[0] = OverflowChoice.NEW_CHAT
    run(qloop, window.controller.send_async("another question " + "word " * 5))
    new = window.controller.conversation_id
    assert new is not None and new != conversation
    moved = window.store.load_conversation(new).messages
    assert [m.role for m in moved] == ["user", "assistant"]
    assert moved[0].text.startswith("another question") and moved[1].finished is not None
    assert len(window.store.load_conversation(conversation).messages) == 8
    assert window.sidebar.conversation_ids()[0] == new
    close_window(qloop, window)


def test_export_markdown_and_json(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    conversation = window.controller.new_conversation()
    window.store.add_user_message(conversation, "What is a draft model?")
    answer = window.store.begin_answer(conversation, {}, {})
    window.store.append_steps(answer, [(event_to_dict(_ANSWER_STEP), 0.1)])
    window.store.finish_answer(answer, None, interrupted=True)
    markdown = window_files.folder / "chat.md"
    data = window_files.folder / "chat.json"
    window.export_to(conversation, markdown, "md")
    window.export_to(conversation, data, "json")
    assert "What is a draft model?" in markdown.read_text(encoding="utf-8")
    exported = json.loads(data.read_text(encoding="utf-8"))
    assert "An old answer." in json.dumps(exported)
    assert "Exported to" in window.statusBar().currentMessage()
    close_window(qloop, window)


def test_overflow_question_is_a_non_modal_box(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    fit = ContextFit(prompt_tokens=300, answer_budget=64, n_ctx=256)
    reduced = ContextFit(prompt_tokens=150, answer_budget=64, n_ctx=256, dropped_turns=2)

    async def ask_and_answer(button_text: str, always: bool = False) -> OverflowChoice:
        question = asyncio.ensure_future(window._ask_overflow(fit, reduced))
        box = await _wait_for_box(window)
        assert "exceeds the 256-token context by 108" in box.text()
        assert box.informativeText().count("2 oldest turns") == 1  # said once, plural
        box.checkBox().setChecked(always)
        next(b for b in box.buttons() if b.text() == button_text).click()
        return await question

    assert run(qloop, ask_and_answer("Drop oldest turns")) is OverflowChoice.DROP_OLDEST
    dropped = run(qloop, ask_and_answer("Drop oldest turns", always=True))
    assert dropped is OverflowChoice.DROP_OLDEST_ALWAYS
    assert run(qloop, ask_and_answer("Start a new chat")) is OverflowChoice.NEW_CHAT
    assert run(qloop, ask_and_answer("Cancel")) is OverflowChoice.CANCEL

    async def ask_then_stop() -> OverflowChoice:
        question = asyncio.ensure_future(window._ask_overflow(fit, reduced))
        box = await _wait_for_box(window)
        window.stop_button.click()  # Stop shows while the message waits on the question
        assert box.objectName() == "context_overflow_box"
        return await question

    assert run(qloop, ask_then_stop()) is OverflowChoice.CANCEL
    assert window._overflow_box is None
    close_window(qloop, window)


async def _wait_for_box(window: QWidget) -> QMessageBox:
    for _ in range(200):
        boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
        if boxes:
            return boxes[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no message box")


def test_legend_explains_ghost_tokens_only_while_they_are_shown(
    qtbot, qloop, window_files: WindowFiles
) -> None:
    window = open_window(qtbot, window_files)
    assert not window.legend.rejected_sample.isVisible()
    window.show_rejected_action.setChecked(True)
    assert window.legend.rejected_sample.isVisible()
    window.show_rejected_action.setChecked(False)
    assert not window.legend.rejected_sample.isVisible()
    window.show_rejected_action.setChecked(True)
    close_window(qloop, window)

    # Restored on the next start, legend included.
    again = open_window(qtbot, window_files)
    assert again.show_rejected_action.isChecked() and again.legend.rejected_sample.isVisible()
    close_window(qloop, again)


def test_sending_while_a_pair_loads_says_it_is_loading(
    qtbot, qloop, window_files: WindowFiles
) -> None:
    window = open_window(qtbot, window_files)
    assert "Load a model pair first" in window.controller.ready_reason()
    pending = qloop.create_future()
    window.bridge._job = pending  # as while a load runs
    try:
        reason = window.controller.ready_reason()
        assert "still loading" in reason and "Load a model pair first" not in reason
        shown: list[str] = []
        window.controller.message_failed.connect(shown.append)
        window.controller.send("Hello")
        run(qloop, asyncio.sleep(0.05))
        assert any("still loading" in text for text in shown)
    finally:
        pending.cancel()
        window.bridge._job = None
    assert "Load a model pair first" in window.controller.ready_reason()
    close_window(qloop, window)


def test_a_message_sent_while_an_answer_runs_goes_back_to_the_input(
    qtbot, qloop, window_files: WindowFiles
) -> None:
    window = open_window(qtbot, window_files)
    running = qloop.create_future()
    window.controller._task = running  # as while an answer is written
    try:
        qtbot.keyClicks(window.input_box, "my next question")
        qtbot.keyClick(window.input_box, Qt.Key.Key_Return)
        run(qloop, asyncio.sleep(0.05))
        # Enter cleared the box; the refused text is put back, not lost.
        assert window.input_box.toPlainText() == "my next question"
        assert "still being written" in window.statusBar().currentMessage()
    finally:
        running.cancel()
        window.controller._task = None
    close_window(qloop, window)


def test_esc_stops_only_while_an_answer_runs(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    assert not window.stop_shortcut.isEnabled() and not window.stop_action.isEnabled()
    assert window.stop_shortcut.key() == QKeySequence(Qt.Key.Key_Escape)
    assert window.stop_action.text().endswith("\tEsc")  # the menu shows the key
    window._on_busy(True)
    assert window.stop_shortcut.isEnabled() and window.stop_action.isEnabled()
    window._on_busy(False)
    assert not window.stop_shortcut.isEnabled() and not window.stop_action.isEnabled()
    close_window(qloop, window)


def test_sending_with_nothing_loaded_brings_the_model_picker_forward(
    qtbot, qloop, window_files: WindowFiles
) -> None:
    window = open_window(qtbot, window_files)
    window.side_tabs.setCurrentIndex(window.side_tabs.count() - 1)  # Server, as restored
    window.controller.send("Hello")
    run(qloop, asyncio.sleep(0.05))
    assert window.side_tabs.tabText(window.side_tabs.currentIndex()) == "Models"
    assert "Load a model pair first" in window.statusBar().currentMessage()
    assert window.input_box.toPlainText() == "Hello"  # the text waits to be sent again
    close_window(qloop, window)


def test_the_status_bar_names_the_draft_source_of_a_pair_without_a_draft_model(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = open_window(qtbot, window_files)
    request = replace(tiny_request(tiny_models.target, None), draft_source=DraftSource.NGRAM)
    window.model_panel.load_offered_pair(request)  # as "Load last pair" does
    run(qloop, wait_until(lambda: window.bridge.current_pair() is not None, timeout=60))
    assert "tiny-target.gguf + n-gram lookup" in window.pair_label.text()
    close_window(qloop, window)


def test_a_narrow_window_keeps_the_chat_readable(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    window.resize(1400, 800)
    QTest.qWait(50)
    assert window.sidebar.width() >= SIDEBAR_MIN_WIDTH
    window.resize(900, 600)
    QTest.qWait(50)
    # The side columns gave way, not the chat (it had shrunk to about 230 px here), and
    # the conversations folded away so the numbers beside the chat keep their width.
    assert window.centre_tabs.width() >= CHAT_MIN_WIDTH
    assert window.splitter.sizes()[0] == 0
    names = window.speculation.findChildren(QLabel)
    (per_pass,) = [label for label in names if label.text() == "Tokens per target pass"]
    assert per_pass.width() >= per_pass.sizeHint().width()  # not cut off
    # Narrower still: the folded list's minimum no longer holds the window at 778 px.
    window.resize(740, 500)
    QTest.qWait(50)
    assert window.width() == 740 and window.centre_tabs.width() >= CHAT_MIN_WIDTH
    # Wide again, the conversations come back.
    window.resize(1400, 800)
    QTest.qWait(50)
    assert window.sidebar.width() >= SIDEBAR_MIN_WIDTH
    close_window(qloop, window)


def test_dropping_without_asking_for_the_rest_of_a_conversation(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    asked: list[ContextFit] = []

    async def drop_always(fit: ContextFit, reduced: ContextFit | None) -> OverflowChoice:
        asked.append(fit)
        return OverflowChoice.DROP_OLDEST_ALWAYS

    window = open_window(qtbot, window_files, ask_overflow=drop_always)
    _load_with_a_256_token_context(qloop, window, tiny_models)
    window.controller._settings = lambda: GREEDY.with_changes(n_predict=16)
    conversation = _open_a_conversation_near_the_limit(window)
    run(qloop, window.controller.send_async("new question " + "word " * 5))
    run(qloop, window.controller.send_async("and another " + "word " * 5))
    assert len(asked) == 1  # the second overflow dropped turns without asking
    assert len(window.store.load_conversation(conversation).messages) == 10
    assert window.chat_view.messages()[0].hidden_label.isVisibleTo(window.chat_view.messages()[0])
    # Another conversation asks again.
    _open_a_conversation_near_the_limit(window)
    run(qloop, window.controller.send_async("new question " + "word " * 5))
    assert len(asked) == 2
    close_window(qloop, window)
