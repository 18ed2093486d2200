"""The chat view on its own, fed synthetic steps: ghosts, hover text, Markdown, copy."""

from __future__ import annotations

import itertools
import math

import pytest
from PySide6.QtCore import QPoint, QRect, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QAbstractButton, QWidget

from core.engine.events import (
    FinishedEvent,
    Provenance,
    StopReason,
)
from core.speculation.trace import AnswerTrace
from gui.chat.chat_view import ChatView
from gui.chat.markdown import COPY_LINK_LABEL, add_copy_links, align_rendered, code_block_index
from gui.chat.message_widgets import STREAMING_GROWTH_LINES
from gui.chat.token_formats import token_formats
from tests.support.synthetic_events import synthetic_stats as _stats
from tests.support.synthetic_events import synthetic_step as _step

STEPS = [
    _step([("Here", Provenance.DRAFT_ACCEPTED), (" is", Provenance.TARGET_CORRECTION)], (" was",)),
    _step(
        [
            (":\n\n```python\n", Provenance.DRAFT_ACCEPTED),
            ("print(1)\n", Provenance.DRAFT_ACCEPTED),
            ("```\n", Provenance.TARGET_BONUS),
            ("*done*", Provenance.TARGET_ONLY),
        ]
    ),
]


def _answer(qtbot, show_rejected: bool = False):  # type: ignore[no-untyped-def]
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.set_show_rejected(show_rejected)
    view.set_markdown(False)
    trace = AnswerTrace()
    answer = view.add_answer(1, trace)
    for index, step in enumerate(STEPS):
        answer.append_tokens(trace.add_step(step, 0.1 * (index + 1)))
    return view, answer


def test_tokens_stream_in_and_rejected_drafts_ghost_before_the_correction(qtbot) -> None:
    view, answer = _answer(qtbot)
    text = "Here is:\n\n```python\nprint(1)\n```\n*done*"
    assert answer.token_view.toPlainText() == text
    assert "draft token 1" in answer.tooltip_at(0)
    assert "Draft confidence: 90%" in answer.tooltip_at(0)
    assert "correction" in answer.tooltip_at(len("Here "))

    view.set_show_rejected(True)
    assert answer.token_view.toPlainText() == "Here was is" + text[len("Here is") :]
    ghost_tip = answer.tooltip_at(len("Here "))
    assert "rejected draft" in ghost_tip and "40%" in ghost_tip
    assert "correction" in answer.tooltip_at(len("Here was "))
    view.set_show_rejected(False)
    assert answer.token_view.toPlainText() == text


def test_finished_answer_switches_between_markdown_and_tokens(qtbot) -> None:
    view, answer = _answer(qtbot)
    view.show()
    answer.trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, _stats(6)))
    answer.finish(_stats(6), StopReason.END_OF_GENERATION)
    assert answer.readout.isVisible()
    answer.set_markdown(True)
    assert answer.markdown_view.isVisible() and not answer.token_view.isVisible()
    rendered = answer.markdown_view.toPlainText()
    assert "Copy code" in rendered and "print(1)" in rendered and "```" not in rendered
    answer.markdown_view.anchorClicked.emit(QUrl("copy-code:0"))
    assert QGuiApplication.clipboard().text() == "print(1)"
    answer.markdown_button.click()
    assert answer.token_view.isVisible() and not answer.markdown_view.isVisible()
    # The global toggle reaches every answer.
    view.set_markdown(True)
    assert answer.markdown_view.isVisible()


def test_regenerate_only_on_the_last_answer(qtbot) -> None:
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.add_user_message(1, "a")
    first = view.add_answer(2, AnswerTrace())
    view.add_user_message(3, "b")
    second = view.add_answer(4, AnswerTrace())
    assert not first.regenerate_button.isVisibleTo(first)
    assert second.regenerate_button.isVisibleTo(second)
    view.remove_from(3)
    assert [m.message_id for m in view.messages()] == [1, 2]
    assert first.regenerate_button.isVisibleTo(first)


def test_copy_links_go_before_each_code_block() -> None:
    result = add_copy_links("Text\n```js\nlet a;\n```\nmore\n~~~\nx\ny\n~~~\n```\nopen")
    assert result.code_blocks == ("let a;", "x\ny", "open")
    assert result.markdown.count("(copy-code:") == 3
    assert code_block_index("copy-code:2") == 2
    # Empty blocks (stray fences) get no link; a cut-off block is copied without the
    # blank line after its fence.
    stray = add_copy_links("```python\nprint(1)\n```\n```\n```\n```\n\nx = 2\n")
    assert stray.code_blocks == ("print(1)", "x = 2")
    assert stray.markdown.count("(copy-code:") == 2
    assert code_block_index("https://example.com") is None


def test_user_message_copy_and_edit_in_place(qtbot) -> None:
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.show()
    message = view.add_user_message(7, "first try")
    qtbot.waitUntil(message.isVisible)  # layouts show a new child on the next loop pass
    edits: list[tuple[int, str]] = []
    view.edit_submitted.connect(lambda message_id, text: edits.append((message_id, text)))
    message.copy_button.click()
    assert QGuiApplication.clipboard().text() == "first try"
    message.edit_button.click()
    assert message.editor.isVisible() and not message.view.isVisible()
    message.editor.setPlainText("second try")
    message.send_edit_button.click()
    assert edits == [(7, "second try")]
    assert message.view.isVisible() and not message.editor.isVisible()
    # While an answer runs, editing is off.
    view.set_busy(True)
    assert not message.edit_button.isEnabled()


def test_only_the_newest_readout_stays_open(qtbot) -> None:
    view, answer = _answer(qtbot)
    view.show()
    answer.trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, _stats(6)))
    answer.finish(_stats(6), StopReason.END_OF_GENERATION)
    qtbot.waitUntil(answer.readout.isVisible)
    view.add_user_message(2, "more")
    newer = view.add_answer(3, AnswerTrace())
    assert not answer.readout.isVisible() and not answer.readout_button.isChecked()
    answer.readout_button.click()
    assert answer.readout.isVisible()
    assert not newer.readout_button.isVisibleTo(newer)  # no stats yet


def _shown_answer(qtbot, height: int):  # type: ignore[no-untyped-def]
    """A chat view on screen, 500 px wide, holding one empty answer."""
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.resize(500, height)
    view.show()
    trace = AnswerTrace()
    answer = view.add_answer(1, trace)
    qtbot.waitUntil(answer.isVisible)
    return view, trace, answer


def test_view_follows_new_text_only_while_at_the_bottom(qtbot) -> None:
    view, trace, answer = _shown_answer(qtbot, 300)
    bar = view.verticalScrollBar()

    def add_lines(count: int) -> None:
        for _ in range(count):
            line = _step([("more text on a new line\n", Provenance.TARGET_ONLY)])
            answer.append_tokens(trace.add_step(line, 0.1))
        qtbot.wait(20)  # layout and the scroll range follow on the next loop pass

    add_lines(40)
    assert bar.maximum() > 0 and bar.value() == bar.maximum()
    bar.setValue(0)  # the user scrolls up to read
    add_lines(10)
    assert bar.value() == 0
    bar.setValue(bar.maximum())  # and back down: following again
    add_lines(10)
    assert bar.value() == bar.maximum()


def test_a_streaming_answer_grows_a_few_lines_at_a_time_then_fits(qtbot) -> None:
    _view, trace, answer = _shown_answer(qtbot, 400)
    token_view = answer.token_view
    document = token_view.document()
    line = token_view.fontMetrics().lineSpacing()
    margins = token_view.contentsMargins().top() + token_view.contentsMargins().bottom()

    def text_height() -> int:
        return math.ceil(document.documentLayout().documentSize().height()) + margins

    heights = set()
    for _ in range(24):
        step = _step([("another line of the answer\n", Provenance.TARGET_ONLY)])
        answer.append_tokens(trace.add_step(step, 0.1))
        heights.add(token_view.height())
        # Room for the text, and never more than the spare lines beyond it.
        assert text_height() <= token_view.height()
        assert token_view.height() < text_height() + STREAMING_GROWTH_LINES * line
    # 24 lines of text, but the view changed height only every few lines: each change
    # repaints the whole answer.
    assert len(heights) <= 24 // (STREAMING_GROWTH_LINES - 1)

    answer.finish(_stats(24), StopReason.END_OF_GENERATION)
    answer.set_markdown(False)
    assert token_view.height() == text_height()


def test_rendered_markdown_keeps_the_token_colours(qtbot) -> None:
    _view, answer = _answer(qtbot)
    answer.trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, _stats(6)))
    answer.finish(_stats(6), StopReason.END_OF_GENERATION)
    answer.set_markdown(True)
    formats = token_formats(False)
    document = answer.markdown_view.document()
    text = document.toPlainText()

    def format_of(word: str) -> QTextCharFormat:
        cursor = QTextCursor(document)
        cursor.setPosition(text.index(word) + 1)
        return cursor.charFormat()

    accepted = formats.token_format(Provenance.DRAFT_ACCEPTED)
    assert format_of("Here").background() == accepted.background()
    assert format_of("print").background() == accepted.background()
    correction = formats.token_format(Provenance.TARGET_CORRECTION)
    assert format_of("is").underlineStyle() == correction.underlineStyle()
    # Markdown's own emphasis survives; target-only text gets no tint.
    done = format_of("done")
    assert done.fontItalic()
    assert done.background().style() == Qt.BrushStyle.NoBrush


def test_alignment_skips_markup_and_copy_links() -> None:
    source = "A **bold** word\n```\ncode\n```"
    rendered = f"A bold word\n{COPY_LINK_LABEL}\ncode"
    mapping = align_rendered(source, rendered)
    assert [source[i] if i >= 0 else None for i in mapping[:6]] == ["A", " ", "b", "o", "l", "d"]
    link = rendered.index(COPY_LINK_LABEL)
    assert set(mapping[link : link + len(COPY_LINK_LABEL)]) == {-1}
    code = rendered.index("code", link + len(COPY_LINK_LABEL))
    assert source[mapping[code]] == "c" and source[mapping[code] - 1] == "\n"
    # The same words inside a sentence are the answer's own text, not a link.
    source = "Press Copy code to copy."
    assert -1 not in align_rendered(source, source)


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("markdown", [True, False])
def test_a_narrow_chat_wraps_every_message_to_its_width(qtbot, markdown: bool) -> None:
    """The readout's long lines and the header's buttons must not make a message wider
    than the view: with no horizontal bar, the text would be cut off at the right."""
    view, answer = _answer(qtbot)
    code = "\n```\nfruits = [" + ", ".join(f'"fruit {i}"' for i in range(12)) + "]\n```\n"
    answer.append_tokens(answer.trace.add_step(_step([(code, Provenance.TARGET_ONLY)]), 0.3))
    user = view.add_user_message(2, "Please write a numbered list and a code block. " * 4)
    view.resize(300, 500)
    view.show()
    answer.trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, _stats(6)))
    answer.finish(_stats(6), StopReason.MAX_TOKENS)
    answer.set_markdown(markdown)
    qtbot.waitUntil(answer.readout.isVisible)
    qtbot.wait(20)  # layouts settle on the next loop passes
    width = view.viewport().width()
    # The readout's lines alone are wider than the view: the case being tested.
    assert answer.readout.label.sizeHint().width() > width
    prose = answer.markdown_view if markdown else answer.token_view
    assert prose.isVisible()
    for message, text_view in ((answer, prose), (user, user.view)):
        assert message.geometry().right() < width
        # The text re-wraps to the narrow width instead of running past the edge.
        document = text_view.document()
        assert document.textWidth() == text_view.viewport().width()
        assert document.size().width() <= document.textWidth()  # code lines wrap too
        assert message.rect().contains(_rect_in(text_view, message))
        # Every button is inside the message, and the parts are stacked, not overlapping.
        buttons = [b for b in message.findChildren(QAbstractButton) if b.isVisible()]
        assert buttons
        for button in buttons:
            assert message.rect().contains(_rect_in(button, message)), button.text()
        parts = [message.body.itemAt(i) for i in range(message.body.count())]
        shown = [part.geometry() for part in parts if part is not None and not part.isEmpty()]
        for above, below in itertools.pairwise(shown):
            assert above.bottom() < below.top()
        assert shown[-1].bottom() <= message.contentsRect().bottom()
    # The readout scrolls sideways inside itself, and its bar is below its lines.
    scroller = answer.readout.scroller
    bar = scroller.horizontalScrollBar()
    assert bar.isVisible() and bar.maximum() > 0
    assert answer.readout.label.height() <= scroller.viewport().height()


def test_editing_a_message_shows_its_editor_from_the_top(qtbot) -> None:
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.resize(420, 360)
    view.show()
    qtbot.waitExposed(view)
    for message_id in range(1, 5):
        view.add_user_message(message_id, f"Question {message_id}, asked at some length.")
    edited = view.add_user_message(5, "Who are you?")
    view.add_user_message(6, "\n".join(f"a long reply, line {n}" for n in range(10)))
    qtbot.waitUntil(lambda: view.at_bottom() and view.verticalScrollBar().maximum() > 0)
    edited.start_edit()
    qtbot.wait(50)
    # A chat following its end pushed the taller editor's top (its text) out of view.
    top = edited.editor.mapTo(view.viewport(), QPoint(0, 0)).y()
    assert 0 <= top < view.viewport().height()
    assert edited.editor.height() < view.viewport().height() / 2


def test_the_edit_box_grows_with_the_lines_typed(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    message = view.add_user_message(1, "One line.")
    message.start_edit()
    opened = message.editor.height()
    message.editor.setPlainText("\n".join(f"line {n}" for n in range(8)))
    assert message.editor.height() > opened  # it kept its first height and scrolled
    message.editor.setPlainText("\n".join(f"line {n}" for n in range(40)))
    tallest = message.editor.height()
    message.editor.setPlainText("\n".join(f"line {n}" for n in range(60)))
    assert message.editor.height() == tallest  # 12 lines at most, then it scrolls


def test_an_edit_is_sent_with_enter_and_cancelled_with_esc(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = ChatView(token_formats(False))
    qtbot.addWidget(view)
    view.show()
    message = view.add_user_message(3, "first try")
    qtbot.waitUntil(message.isVisible)
    edits: list[tuple[int, str]] = []
    view.edit_submitted.connect(lambda message_id, text: edits.append((message_id, text)))

    message.edit_button.click()
    qtbot.keyClick(message.editor, Qt.Key.Key_Escape)
    assert not message.editor.isVisible() and message.view.isVisible() and edits == []

    message.edit_button.click()
    qtbot.keyClicks(message.editor, " again")
    qtbot.keyClick(message.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(message.editor, "more")
    assert message.editor.tabChangesFocus()  # Tab leaves the box, for the keyboard user
    qtbot.keyClick(message.editor, Qt.Key.Key_Return)
    assert edits == [(3, "first try again\nmore")]
    assert not message.editor.isVisible()

    # While an answer runs nothing is sent, and the edit is not lost.
    view.set_busy(True)
    message.start_edit()
    qtbot.keyClick(message.editor, Qt.Key.Key_Return)
    assert len(edits) == 1
    assert message.editor.isVisible() and message.editor.toPlainText() == "first try"


def test_an_interrupted_answer_says_why_in_sentences_and_whether_text_was_kept(qtbot) -> None:  # type: ignore[no-untyped-def]
    view, answer = _answer(qtbot)
    # A worker's words, without a closing full stop.
    answer.finish(None, None, interrupted_reason="RPC worker 127.0.0.1:50052 stopped answering")
    assert answer.status_label.text() == (
        "⚠ Interrupted: RPC worker 127.0.0.1:50052 stopped answering. The text above was kept."
    )
    empty = view.add_answer(2, AnswerTrace())
    empty.finish(None, None, interrupted_reason="the engine process was killed (SIGKILL).")
    assert empty.status_label.text() == (
        "⚠ Interrupted: the engine process was killed (SIGKILL). No text had arrived yet."
    )
