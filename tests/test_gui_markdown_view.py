"""A finished answer's rendered Markdown: line breaks, hover text, rejected drafts, code."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt, QUrl
from PySide6.QtGui import QFont, QGuiApplication, QHelpEvent, QTextBlock, QTextCursor, QTextFormat
from PySide6.QtWidgets import QApplication, QTextBrowser, QToolTip
from pytestqt.qtbot import QtBot

from core.engine.events import (
    FinishedEvent,
    Provenance,
    StepEvent,
    StopReason,
)
from core.speculation.trace import AnswerTrace
from gui.chat.chat_view import ChatView
from gui.chat.markdown import COPY_LINK_LABEL, align_rendered, soft_breaks
from gui.chat.message_widgets import AnswerWidget
from gui.chat.token_formats import token_formats
from tests.support.synthetic_events import synthetic_stats as _stats
from tests.support.synthetic_events import synthetic_step

ACCEPTED = Provenance.DRAFT_ACCEPTED
CORRECTION = Provenance.TARGET_CORRECTION
BONUS = Provenance.TARGET_BONUS
ONLY = Provenance.TARGET_ONLY
Tokens = list[tuple[str, Provenance]]


def _step(tokens: Tokens, rejected: tuple[str, ...] = ()) -> StepEvent:
    """One step; its rejected drafts belong in front of its last token (the correction)."""
    return synthetic_step(tokens, rejected, accepted_confidence=0.48, rejected_confidence=0.3)


# The offscreen platform cannot raise a tooltip's window; on a real display it does.
TOOLTIP_NOISE = pytest.mark.qt_log_ignore("This plugin does not support raise")


def _finished(
    qtbot: QtBot, steps: list[StepEvent], show_rejected: bool = False, dark: bool = False
) -> tuple[ChatView, AnswerWidget]:
    """A finished answer shown as rendered Markdown in a wide chat."""
    view = ChatView(token_formats(dark))
    qtbot.addWidget(view)
    view.set_show_rejected(show_rejected)
    trace = AnswerTrace()
    answer = view.add_answer(1, trace)
    for index, step in enumerate(steps):
        answer.append_tokens(trace.add_step(step, 0.1 * (index + 1)))
    trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, _stats(len(trace.tokens))))
    answer.finish(_stats(len(trace.tokens)), StopReason.END_OF_GENERATION)
    view.resize(900, 700)
    view.show()
    assert answer.markdown_view.isVisible()  # rendered Markdown is the default
    return view, answer


def _blocks(browser: QTextBrowser) -> list[QTextBlock]:
    document = browser.document()
    blocks = []
    block = document.begin()
    while block.isValid():
        blocks.append(block)
        block = block.next()
    return blocks


def _hover(browser: QTextBrowser, position: int) -> str:
    """The tooltip a mouse resting on the character at ``position`` brings up."""
    cursor = QTextCursor(browser.document())
    cursor.setPosition(position)
    left = browser.cursorRect(cursor)
    cursor.setPosition(position + 1)
    right = browser.cursorRect(cursor)
    assert right.y() == left.y(), "the character must not end its line"
    point = QPoint((left.x() + right.x()) // 2, left.center().y())
    event = QHelpEvent(QEvent.Type.ToolTip, point, browser.viewport().mapToGlobal(point))
    QApplication.sendEvent(browser.viewport(), event)
    # A view with nothing to say ignores the event (Qt hides the last tip only later).
    return QToolTip.text() if event.isAccepted() and QToolTip.isVisible() else ""


POEM: Tokens = [
    ("Leaves", ONLY),
    (" fall", ACCEPTED),
    (" softly", ACCEPTED),
    (" down\n", CORRECTION),
    ("Painting", ACCEPTED),
    (" paths", ACCEPTED),
    (" with", ACCEPTED),
    (" colors,\n", BONUS),
    ("A gentle", ONLY),
    (" reminder\n", ACCEPTED),
    ("of life's end", ACCEPTED),
    ("\n\nSecond", ONLY),
    (" stanza\nhere", ONLY),
]


def test_a_poem_keeps_its_line_breaks_and_its_stanzas(qtbot: QtBot) -> None:
    _view, answer = _finished(qtbot, [_step(POEM)])
    blocks = _blocks(answer.markdown_view)
    # Two stanzas stay two paragraphs; inside each, every line of the poem is a line.
    assert len(blocks) == 2
    assert blocks[0].text().split("\u2028") == [
        "Leaves fall softly down",
        "Painting paths with colors,",
        "A gentle reminder",
        "of life's end",
    ]
    assert blocks[0].layout().lineCount() == 4
    assert blocks[1].text().split("\u2028") == ["Second stanza", "here"]
    assert answer.markdown_view.toPlainText() == answer.text().replace("\n\n", "\n")


LIST_AND_CODE = (
    "Steps:\n1. Take **one**\n2. Take two\n   on two lines\n\n"
    "```python\ndef f(s):\n    return s[::-1]\n```\n"
    "# Title\nDone,\nbye"
)


def test_lists_headings_and_code_blocks_still_render_as_markdown(qtbot: QtBot) -> None:
    _view, answer = _finished(qtbot, [_step([(LIST_AND_CODE, ONLY)])])
    blocks = _blocks(answer.markdown_view)
    texts = [block.text() for block in blocks]
    assert texts == [
        "Steps:",
        "Take one",
        "Take two\u2028on two lines",  # a list item's own line break stays in the item
        COPY_LINK_LABEL,
        "def f(s):",
        "    return s[::-1]",  # code keeps its lines and indentation, no extra breaks
        "Title",
        "Done,\u2028bye",
    ]
    assert blocks[1].textList() is not None and blocks[2].textList() is blocks[1].textList()
    assert blocks[1].textList().count() == 2
    assert blocks[6].blockFormat().headingLevel() == 1
    for code in blocks[4:6]:
        assert code.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)


def test_soft_breaks_are_single_newlines_between_text() -> None:
    source = "a *b*\nc\n\nd e"
    rendered = "a b c\nd e"
    breaks = soft_breaks(source, rendered, align_rendered(source, rendered))
    assert breaks == [3]  # not the spaces the source has, nor the paragraph break


@TOOLTIP_NOISE
def test_hovering_a_token_in_rendered_markdown_shows_its_provenance(qtbot: QtBot) -> None:
    steps = [
        _step([("Here", ACCEPTED), (" is", CORRECTION)], (" was",)),
        _step([(" a **designed", ACCEPTED), ("** word.\n\n```\n", ONLY), ("x = 1", BONUS)]),
    ]
    _view, answer = _finished(qtbot, steps)
    browser = answer.markdown_view
    text = browser.toPlainText()
    assert text.startswith("Here is a designed word.")
    designed = _hover(browser, text.index("designed") + 3)
    assert "␣a␣**designed</b> — accepted draft" in designed
    assert "Draft confidence: 48%" in designed
    assert "correction" in _hover(browser, text.index("is"))
    assert "Rejected here: ␣was (30%)" in _hover(browser, text.index("is"))
    assert "bonus" in _hover(browser, text.index("x = 1"))
    # The same token in the token view gives the same text.
    answer.set_markdown(False)
    assert _hover(answer.token_view, answer.token_view.toPlainText().index("designed")) == (
        designed
    )
    answer.set_markdown(True)
    assert _hover(browser, text.index("Copy code")) == ""  # the link is nobody's token


GHOSTED: list[StepEvent] = [
    _step([("Here", ACCEPTED), (" is", CORRECTION)], (" was", " the")),
    _step([(":\n\n```python\nprint(", ACCEPTED), ("1", CORRECTION)], ("2",)),
    _step([(")\n```\n*done*", ONLY)]),
]


@TOOLTIP_NOISE
def test_rejected_drafts_are_drawn_in_rendered_markdown_where_proposed(qtbot: QtBot) -> None:
    view, answer = _finished(qtbot, GHOSTED)
    browser = answer.markdown_view
    plain = browser.toPlainText()
    assert "was" not in plain
    view.set_show_rejected(True)
    assert answer.markdown_view.isVisible()  # still the rendered view, not the tokens
    text = browser.toPlainText()
    assert text == plain.replace("Here is", "Here was the is").replace("print(1", "print(21")
    document = browser.document()

    def char_format_at(position: int):  # type: ignore[no-untyped-def]
        cursor = QTextCursor(document)
        cursor.setPosition(position + 1)
        return cursor.charFormat()

    ghost = char_format_at(text.index("was"))
    assert ghost.fontStrikeOut() and ghost.fontItalic()
    assert ghost.background().style() == Qt.BrushStyle.NoBrush
    assert "rejected draft" in _hover(browser, text.index("was"))
    assert "correction" in _hover(browser, text.index("is:"))  # hover moved with the text
    # In a code block the ghost keeps the code's font.
    code_ghost = char_format_at(text.index("print(2") + len("print("))
    assert code_ghost.fontStrikeOut()
    code = char_format_at(text.index("print(2"))
    assert code_ghost.fontFamilies() == code.fontFamilies() != ghost.fontFamilies()
    assert "rejected draft" in _hover(browser, text.index("print(2") + len("print("))
    assert "correction" in _hover(browser, text.index("print(2") + len("print(2"))
    # Copying still copies the code itself, not the drafts.
    browser.anchorClicked.emit(QUrl("copy-code:0"))
    assert QGuiApplication.clipboard().text() == "print(1)"
    view.set_show_rejected(False)
    assert browser.toPlainText() == plain


@pytest.mark.parametrize("dark", [False, True])
def test_code_blocks_are_shaded_and_the_copy_link_says_copy(qtbot: QtBot, dark: bool) -> None:
    _view, answer = _finished(qtbot, [_step([(LIST_AND_CODE, ONLY)])], dark=dark)
    assert not COPY_LINK_LABEL.startswith(("▸", "▶", "►"))  # not a fold arrow
    assert "Copy" in COPY_LINK_LABEL
    blocks = _blocks(answer.markdown_view)
    shaded = [
        b.text() for b in blocks if b.blockFormat().background().style() != Qt.BrushStyle.NoBrush
    ]
    # The copy link is the code's header bar, at its right, over the same shade.
    assert shaded == [COPY_LINK_LABEL, "def f(s):", "    return s[::-1]"]
    assert blocks[3].blockFormat().alignment() & Qt.AlignmentFlag.AlignRight
    shade = blocks[4].blockFormat().background().color()
    assert shade == token_formats(dark).code_background()
    assert 0 < shade.alphaF() <= 0.1  # subtle, on either theme's background
    assert shade.lightness() == (255 if dark else 0)  # lightens dark, darkens light
    # A theme change re-shades it.
    answer.set_style(token_formats(not dark))
    block = _blocks(answer.markdown_view)[4]
    assert block.blockFormat().background().color() == token_formats(not dark).code_background()


@TOOLTIP_NOISE
def test_hover_and_ghosts_stay_on_their_tokens_after_an_emoji(qtbot: QtBot) -> None:
    # An emoji is two document positions (UTF-16) but one Python character.
    steps = [_step([("Leaves 🍂", ACCEPTED), (" fall", CORRECTION)], (" drop",))]
    steps.append(_step([("\nsoftly", BONUS)]))
    _view, answer = _finished(qtbot, steps, show_rejected=True)
    browser = answer.markdown_view
    assert browser.toPlainText() == "Leaves 🍂 drop fall\nsoftly"
    position = browser.document().characterCount() - 1 - len("softly")
    assert "bonus" in _hover(browser, position)
    assert "correction" in _hover(browser, position - len(" fall\n") + 1)
    assert "rejected draft" in _hover(browser, position - len(" drop fall\n") + 1)


def test_a_correction_is_bold_in_rendered_markdown_as_in_the_legend(qtbot: QtBot) -> None:
    steps = [_step([("Here", ACCEPTED), (" is", CORRECTION)]), _step([(" **it**.", ONLY)])]
    _view, answer = _finished(qtbot, steps)
    browser = answer.markdown_view
    text = browser.toPlainText()

    def weight(at: int) -> int:
        cursor = QTextCursor(browser.document())
        cursor.setPosition(at + 1)  # charFormat() is of the character before
        return cursor.charFormat().fontWeight()

    assert weight(text.index("is")) >= QFont.Weight.Bold
    assert weight(text.index("Here")) < QFont.Weight.Bold
    assert weight(text.index("it")) >= QFont.Weight.Bold  # **strong** keeps its weight
