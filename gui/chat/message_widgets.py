"""One widget per chat message: the user's text, or an answer with coloured tokens.

An answer keeps its own QTextDocument. Streaming appends at the end inside one edit
block per flush, one ``insertText`` per run of same-format text, so a flush costs
the same at token 20 and at token 20,000 (qtconsole's pending-text flush; GPT4All's
re-render per token is O(n^2)).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from PySide6.QtCore import QEvent, QPoint, QPointF, QSize, QSizeF, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QGuiApplication,
    QHelpEvent,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextOption,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core.engine.events import GenerationStats, Provenance, RejectedToken, StopReason
from core.speculation.trace import AnswerTrace, TokenInfo
from core.wording import with_full_stop
from gui.chat.flow_layout import FlowLayout
from gui.chat.input_box import InputBox
from gui.chat.markdown import (
    COPY_LINK_LABEL,
    add_copy_links,
    align_rendered,
    code_block_index,
    soft_breaks,
)
from gui.chat.readout_widget import ReadoutWidget
from gui.theme import set_role


class TokenStyle(Protocol):
    """How tokens look; the visuals module provides the palette for the current theme."""

    def token_format(self, provenance: Provenance) -> QTextCharFormat: ...
    def ghost_format(self) -> QTextCharFormat: ...
    def token_tooltip(self, info: TokenInfo) -> str: ...
    def ghost_tooltip(self, token: RejectedToken) -> str: ...
    def code_background(self) -> QColor: ...


_GHOST = "ghost"
# Longest paragraph (characters) the token view lets grow before breaking it.
_BLOCK_LIMIT = 1500
# While an answer streams, its token view grows this many lines at a time. Every
# change of its height moves and repaints the whole answer, twice (the view's own
# resize, then its parents' layout), and Qt shapes every visible line again to
# paint it; growing a line at a time, that was a tenth of the window's CPU per
# token (tests/benchmarks/window_stream_bench.py, (d)). The spare lines show as
# room under the text until the answer ends, when the view fits its text again.
STREAMING_GROWTH_LINES = 4
# (text, format key: a Provenance or _GHOST, what the hover shows)
_Piece = tuple[str, object, "TokenInfo | RejectedToken"]
# Qt's line break inside a paragraph (what <br> becomes), as opposed to a new paragraph.
_LINE_BREAK = "\u2028"
# Room under a rendered code block (pixels), as between paragraphs.
_CODE_GAP = 6


def utf16_length(text: str) -> int:
    """Length in QString units (UTF-16), which is what document positions count."""
    return len(text.encode("utf-16-le")) // 2


class GrowingTextBrowser(QTextBrowser):
    """Read-only text that is as tall as its document; the chat view scrolls, not it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setOpenLinks(False)
        self.viewport().setAutoFillBackground(False)
        self.document().setDocumentMargin(2)
        self._growth_lines = 0
        # A long unbroken word (a URL, a code line) wraps too instead of running past
        # the edge: there is no horizontal scroll bar to reach it.
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout = self.document().documentLayout()
        layout.documentSizeChanged.connect(self._fit_height)
        self._fit_height(layout.documentSize())

    def set_growth_lines(self, lines: int) -> None:
        """Grow ``lines`` lines at a time (text streaming in), or fit the text (0)."""
        self._growth_lines = max(0, lines)
        self._fit_height(self.document().documentLayout().documentSize())

    def _fit_height(self, size: QSizeF) -> None:
        margins = self.contentsMargins()
        height = math.ceil(size.height())
        if self._growth_lines:
            step = self._growth_lines * self.fontMetrics().lineSpacing()
            height = math.ceil(height / step) * step
        self.setFixedHeight(height + margins.top() + margins.bottom())

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(200, self.height())


class _Spans:
    """Which token (or ghosted rejected draft) covers each position of a document."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.entries: list[TokenInfo | RejectedToken] = []

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()
        self.entries.clear()

    def add(self, start: int, end: int, entry: TokenInfo | RejectedToken) -> None:
        """Add a span; spans come in document order and do not overlap."""
        self.starts.append(start)
        self.ends.append(end)
        self.entries.append(entry)

    def at(self, position: int) -> TokenInfo | RejectedToken | None:
        index = bisect.bisect_right(self.starts, position) - 1
        if position < 0 or index < 0 or position >= self.ends[index]:
            return None
        return self.entries[index]


class _TokenBrowser(GrowingTextBrowser):
    """A view of an answer that maps a hovered character back to its token."""

    def __init__(self, parent: QWidget, tooltip_at: Callable[[int], str]) -> None:
        super().__init__(parent)
        self._tooltip_at = tooltip_at

    def viewportEvent(self, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self._tooltip_at(self._character_at(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def _character_at(self, point: QPoint) -> int:
        """Index of the character under ``point``, or -1 over empty space."""
        layout = self.document().documentLayout()
        position = layout.hitTest(QPointF(point), Qt.HitTestAccuracy.ExactHit)
        if position < 0:
            return -1
        cursor = QTextCursor(self.document())
        cursor.setPosition(position)
        # hitTest answers the nearest cursor gap; left of it is the previous character.
        if point.x() < self.cursorRect(cursor).x() and position > 0:
            return position - 1
        return position


class MessageWidget(QFrame):
    """Common frame: a role line with buttons, then the body."""

    def __init__(self, message_id: int, role_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_id = message_id
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # Preferred, not Maximum: a message's height depends on its width (wrapping
        # text, button rows), and Maximum would cap it at the height its preferred
        # width needs, squeezing its parts over each other in a narrow chat.
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.role_label = QLabel(f"<b>{role_title}</b>")
        self.hidden_label = QLabel("not seen by the model")
        self.hidden_label.setToolTip(
            "Dropped from what the model sees so the conversation fits its context; "
            "the conversation keeps it."
        )
        set_role(self.hidden_label, "muted")
        self.hidden_label.hide()
        # The buttons wrap onto a second row rather than set the chat's minimum width.
        self.buttons = FlowLayout(spacing=2)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.role_label)
        header.addWidget(self.hidden_label)
        header.addStretch(1)
        header.addLayout(self.buttons)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(8, 4, 8, 6)
        self.body.setSpacing(2)
        self.body.addLayout(header)

    def _button(self, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        self.buttons.addWidget(button)
        return button

    def set_busy(self, busy: bool) -> None:
        """Disable actions that would start an answer while one is running."""

    def set_hidden_from_model(self, hidden: bool) -> None:
        """Say (in the header) that the model no longer sees this message."""
        if hidden != self.hidden_label.isVisibleTo(self):
            self.hidden_label.setVisible(hidden)


# The edit box grows with the message up to this many lines, then scrolls.
EDITOR_MAX_LINES = 12


class UserMessageWidget(MessageWidget):
    """The user's message with Copy and Edit-and-resend.

    Signals:
        edit_submitted(int, str): the edited text to resend (later messages get replaced).
        edit_started(): the editor opened (the chat scrolls it into view).
    """

    edit_submitted = Signal(int, str)
    edit_started = Signal()

    def __init__(self, message_id: int, text: str, parent: QWidget | None = None) -> None:
        super().__init__(message_id, "You", parent)
        self.setObjectName(f"user_message_{message_id}")
        self.text = text
        self._busy = False
        self.copy_button = self._button("Copy", "Copy this message")
        self.copy_button.clicked.connect(self._copy)
        self.edit_button = self._button("Edit", "Edit this message and send it again")
        self.edit_button.clicked.connect(self.start_edit)
        self.view = GrowingTextBrowser(self)
        self.view.setPlainText(text)
        self.body.addWidget(self.view)
        # Keys as in the message box below the chat: Enter sends, Shift+Enter breaks
        # the line, Esc cancels, Tab moves on; the buttons alone left the keyboard
        # stuck in the editor (Tab typed a tab, Esc did nothing).
        self.editor = InputBox(self)
        self.editor.setObjectName("message_editor")
        self.editor.setPlaceholderText("")
        self.editor.submitted.connect(self._send_edited)
        self.editor.stop_requested.connect(self.cancel_edit)
        self.editor.hide()
        self.editor.textChanged.connect(self._fit_editor)
        self.body.addWidget(self.editor)
        self.edit_row = QHBoxLayout()
        self.send_edit_button = QToolButton(self)
        self.send_edit_button.setText("Send")
        self.send_edit_button.setToolTip(
            "Send the edited message; the answers after it are replaced"
        )
        self.send_edit_button.clicked.connect(self.editor.submit)
        self.cancel_edit_button = QToolButton(self)
        self.cancel_edit_button.setText("Cancel")
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.edit_row.addStretch(1)
        self.edit_row.addWidget(self.send_edit_button)
        self.edit_row.addWidget(self.cancel_edit_button)
        self.body.addLayout(self.edit_row)
        self._set_editing(False)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.edit_button.setEnabled(not busy)
        self.send_edit_button.setEnabled(not busy)

    def start_edit(self) -> None:
        self.editor.setPlainText(self.text)
        self._fit_editor()
        self._set_editing(True)
        self.editor.moveCursor(QTextCursor.MoveOperation.End)
        self.editor.setFocus()
        self.edit_started.emit()

    def _fit_editor(self) -> None:
        """As tall as its text (3 to 12 lines, growing as lines are typed), not
        QPlainTextEdit's fixed default."""
        text = self.editor.toPlainText()
        lines = min(max(text.count("\n") + 1, 3), EDITOR_MAX_LINES)
        margins = self.editor.contentsMargins()
        frame = 2 * self.editor.frameWidth() + margins.top() + margins.bottom()
        self.editor.setFixedHeight(lines * self.editor.fontMetrics().lineSpacing() + frame + 8)

    def cancel_edit(self) -> None:
        self._set_editing(False)

    def _set_editing(self, editing: bool) -> None:
        self.view.setVisible(not editing)
        self.editor.setVisible(editing)
        self.send_edit_button.setVisible(editing)
        self.cancel_edit_button.setVisible(editing)

    def _send_edited(self, text: str) -> None:
        if self._busy:
            # Enter while an answer runs: nothing can be sent, so the edit stays open.
            self.editor.setPlainText(text)
            return
        self._set_editing(False)
        self.edit_submitted.emit(self.message_id, text)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text)


class AnswerWidget(MessageWidget):
    """An answer: coloured tokens while streaming, Markdown or tokens once finished.

    Signals:
        regenerate_requested(int): Regenerate was pressed on this answer.
    """

    regenerate_requested = Signal(int)

    def __init__(
        self,
        message_id: int,
        trace: AnswerTrace,
        style: TokenStyle,
        show_rejected: bool,
        markdown: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(message_id, "Assistant", parent)
        self.setObjectName(f"answer_{message_id}")
        self._style = style
        self._show_rejected = show_rejected
        self._markdown_wanted = markdown
        self.trace = trace
        self._spans = _Spans()  # the token view's
        self._markdown_spans = _Spans()  # the rendered view's
        self._length = 0
        self._block_length = 0  # characters in the document's last paragraph
        self._code_blocks: tuple[str, ...] = ()
        # What the rendered view shows now (the text, with or without rejected drafts).
        self._markdown_key: tuple[str, bool] | None = None
        self.finished = False
        self.stats: GenerationStats | None = None

        self.copy_button = self._button("Copy", "Copy the answer's text")
        self.copy_button.clicked.connect(self._copy)
        self.markdown_button = self._button("Markdown", "Show rendered Markdown or coloured tokens")
        self.markdown_button.setCheckable(True)
        self.markdown_button.setChecked(markdown)
        self.markdown_button.toggled.connect(self.set_markdown)
        self.markdown_button.hide()  # Markdown is for finished answers
        self.readout_button = self._button(
            "Stats", "Show or hide llama.cpp's readout of this answer"
        )
        self.readout_button.setCheckable(True)
        self.readout_button.setChecked(True)
        self.readout_button.toggled.connect(self._show_readout)
        self.readout_button.hide()  # until there are stats
        self.regenerate_button = self._button("Regenerate", "Answer the last message again")
        self.regenerate_button.clicked.connect(
            lambda: self.regenerate_requested.emit(self.message_id)
        )
        self.regenerate_button.hide()

        self.token_view = _TokenBrowser(self, self.tooltip_at)
        self.token_view.setObjectName("token_view")
        self.token_view.setMouseTracking(True)
        self.body.addWidget(self.token_view)
        self.markdown_view = _TokenBrowser(self, self.markdown_tooltip_at)
        self.markdown_view.setObjectName("markdown_view")
        self.markdown_view.setMouseTracking(True)
        self.markdown_view.anchorClicked.connect(self._on_link)
        self.markdown_view.hide()
        self.body.addWidget(self.markdown_view)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("answer_status")
        self.status_label.setWordWrap(True)
        # Until the first token: the prompt is being read, which on a slow machine or a
        # long conversation takes seconds; an empty bubble would look stuck.
        self.status_label.setText("Reading the prompt…")
        set_role(self.status_label, "muted")
        self._waiting = True
        self.body.addWidget(self.status_label)
        self.readout = ReadoutWidget(self)
        self.readout.hide()
        self.body.addWidget(self.readout)
        self._cursor = QTextCursor(self.token_view.document())

    # ----- streaming -------------------------------------------------------------

    def append_tokens(self, tokens: Sequence[TokenInfo]) -> None:
        """Append tokens the trace just placed; one edit block for all of them."""
        if self._waiting and tokens:
            self._waiting = False
            self.status_label.hide()
            if not self.finished:
                self.token_view.set_growth_lines(STREAMING_GROWTH_LINES)
        self._insert(self._pieces(tokens))

    def _pieces(self, tokens: Sequence[TokenInfo]) -> list[_Piece]:
        pieces: list[_Piece] = []
        for info in tokens:
            if self._show_rejected and info.rejected_before:
                pieces.extend(self._ghosts(info.rejected_before))
            pieces.append((info.text, info.provenance, info))
        return pieces

    @staticmethod
    def _ghosts(rejected: Sequence[RejectedToken]) -> list[_Piece]:
        return [(_ghost_text(token), _GHOST, token) for token in rejected]

    def _trailing_ghosts(self) -> list[_Piece]:
        return self._ghosts(self._trailing_rejected())

    def _trailing_rejected(self) -> list[RejectedToken]:
        """Drafts rejected at the very end (the answer stopped where their correction was)."""
        if not self._show_rejected or not self.trace.is_finished:
            return []
        count = len(self.trace.tokens)
        rejected: list[RejectedToken] = []
        for draft in self.trace.rejected_drafts:
            if draft.before_token >= count:
                rejected.extend(draft.tokens)
        return rejected

    def _insert(self, pieces: Sequence[_Piece]) -> None:
        if not pieces:
            return
        cursor = self._cursor
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.beginEditBlock()
        run: list[str] = []
        run_key: object = None
        for text, key, entry in pieces:
            if not text:
                continue
            if self._block_length >= _BLOCK_LIMIT and text[0].isspace() and text[0] != "\n":
                # Qt lays out a whole paragraph again on every insert into it, so one
                # endless paragraph would make each flush slower than the last. A
                # break at a word boundary keeps paragraphs short; copying uses the
                # answer's own text, which has no such break.
                if run:
                    self._insert_run(cursor, "".join(run), run_key)
                    run = []
                cursor.insertBlock()
                self._length += 1
                self._block_length = 0
            if key != run_key and run:
                self._insert_run(cursor, "".join(run), run_key)
                run = []
            run_key = key
            run.append(text)
            length = utf16_length(text)
            self._spans.add(self._length, self._length + length, entry)
            self._length += length
            newline = text.rfind("\n")
            if newline >= 0:
                self._block_length = utf16_length(text[newline + 1 :])
            else:
                self._block_length += length
        if run:
            self._insert_run(cursor, "".join(run), run_key)
        cursor.endEditBlock()
        # Qt may normalise some characters (\r, \u2029); keep the hover map honest.
        self._length = cursor.position()

    def _insert_run(self, cursor: QTextCursor, text: str, key: object) -> None:
        if key == _GHOST:
            char_format = self._style.ghost_format()
        else:
            assert isinstance(key, Provenance)
            char_format = self._style.token_format(key)
        cursor.insertText(text, char_format)

    def tooltip_at(self, character: int) -> str:
        """Hover text for the token covering ``character`` of the token view (or empty)."""
        return self._tooltip(self._spans.at(character))

    def markdown_tooltip_at(self, character: int) -> str:
        """Hover text for the token covering ``character`` of the rendered view (or empty)."""
        return self._tooltip(self._markdown_spans.at(character))

    def _tooltip(self, entry: TokenInfo | RejectedToken | None) -> str:
        if entry is None:
            return ""
        if isinstance(entry, RejectedToken):
            return self._style.ghost_tooltip(entry)
        return self._style.token_tooltip(entry)

    # ----- finishing ---------------------------------------------------------------

    def finish(
        self,
        stats: GenerationStats | None,
        stop_reason: StopReason | None,
        detail: str = "",
        interrupted_reason: str = "",
    ) -> None:
        """Show the readout and how the answer ended; enable the Markdown view."""
        self.finished = True
        self.token_view.set_growth_lines(0)
        self.stats = stats
        if stats is not None:
            self.readout.set_stats(stats)
            self.readout_button.show()
            self._show_readout(self.readout_button.isChecked())
        self._waiting = False
        note = _ending_note(stop_reason, stats, detail, interrupted_reason, bool(self.text()))
        set_role(self.status_label, "warning" if interrupted_reason else "muted")
        self.status_label.setText(note)
        self.status_label.setVisible(bool(note))
        self.markdown_button.show()
        self._insert(self._trailing_ghosts())
        self.set_markdown(self._markdown_wanted)

    def text(self) -> str:
        return self.trace.text

    def set_readout_visible(self, on: bool) -> None:
        """Expand or fold the readout (the chat keeps only the newest one open)."""
        self.readout_button.setChecked(on)
        self._show_readout(on)

    def _show_readout(self, on: bool) -> None:
        self.readout.setVisible(on and self.stats is not None)

    def set_markdown(self, on: bool) -> None:
        """Show rendered Markdown (finished answers only) or the coloured tokens."""
        self._markdown_wanted = on
        if self.markdown_button.isChecked() != on:
            self.markdown_button.setChecked(on)  # re-enters once through toggled
            return
        show = on and self.finished
        if show:
            key = (self.text(), self._show_rejected)
            if self._markdown_key != key:
                self._render_markdown(key[0])
                self._markdown_key = key
        self.markdown_view.setVisible(show)
        self.token_view.setVisible(not show)

    def _render_markdown(self, source: str) -> None:
        """Render the answer as Markdown, tied back to its tokens like the token view.

        Every token keeps its tint and its hover text, single newlines stay line
        breaks, code blocks get a shade and a copy link, and when rejected drafts are
        shown they are drawn where they were proposed, as in the token view.
        """
        with_links = add_copy_links(source)
        self._code_blocks = with_links.code_blocks
        self.markdown_view.setMarkdown(with_links.markdown)
        document = self.markdown_view.document()
        rendered = document.toPlainText()
        mapping = align_rendered(source, rendered)
        # Where each rendered character sits in the document (UTF-16 units, as the
        # document counts; toPlainText keeps one character per position).
        if utf16_length(rendered) == len(rendered):  # no character outside the BMP
            positions = list(range(len(rendered) + 1))
        else:
            positions = list(itertools.accumulate(map(utf16_length, rendered), initial=0))
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        _shape_code_blocks(document, self._style.code_background())
        for index in soft_breaks(source, rendered, mapping):
            cursor.setPosition(positions[index])
            cursor.setPosition(positions[index] + 1, QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(_LINE_BREAK, cursor.charFormat())
        self._tie_markdown_to_tokens(cursor, rendered, mapping, positions)
        cursor.endEditBlock()

    def _tie_markdown_to_tokens(
        self, cursor: QTextCursor, rendered: str, mapping: list[int], positions: list[int]
    ) -> None:
        """Tint the rendered text by token, map it for hovering, and add the ghosts.

        Only the tint, the underline and a correction's bold are merged in, so
        Markdown's own bold, italics and code font stay as rendered.

        Rejected drafts are drawn inside the rendered Markdown, not by switching the
        answer to the token view: they are inserted as ghosted, struck-through text
        in front of the first rendered character of the token they were proposed
        before (the token view's place for them), once Markdown has been parsed, so
        they cannot change how the answer parses. A draft proposed in front of
        markup alone (a fence, a list marker) lands on the next text shown.
        """
        tokens = self.trace.tokens
        token_at: list[int] = []  # source character -> token index
        token_starts: list[int] = []
        for number, info in enumerate(tokens):
            token_starts.append(len(token_at))
            token_at.extend([number] * len(info.text))
        ghosts = self._markdown_ghosts(rendered, mapping, token_starts)
        # Runs of rendered characters from one token: (first, past the last, token).
        runs: list[tuple[int, int, int]] = []
        run_start, run_token = 0, -1
        for index in range(len(rendered) + 1):
            source = mapping[index] if index < len(rendered) else -1
            token = token_at[source] if 0 <= source < len(token_at) else -1
            if token != run_token or index in ghosts:
                if run_token >= 0:
                    runs.append((run_start, index, run_token))
                run_start, run_token = index, token
        # Hover: the runs where they end up once the ghosts are in.
        self._markdown_spans.clear()
        offset = 0
        ghost_places = iter(sorted(ghosts))
        place = next(ghost_places, None)
        for first, last, token in [*runs, (len(rendered), len(rendered), -1)]:
            while place is not None and place <= first:
                for ghost in ghosts[place]:
                    length = utf16_length(_ghost_text(ghost))
                    start = positions[place] + offset
                    self._markdown_spans.add(start, start + length, ghost)
                    offset += length
                place = next(ghost_places, None)
            if token >= 0:
                start, end = positions[first] + offset, positions[last] + offset
                self._markdown_spans.add(start, end, tokens[token])
        # Tints: one merge per unbroken stretch of one provenance, not per token.
        stretch_start, stretch_end, stretch_key = 0, 0, None
        for first, last, token in runs:
            provenance = tokens[token].provenance
            if provenance is stretch_key and first == stretch_end:
                stretch_end = last
                continue
            self._tint(cursor, positions[stretch_start], positions[stretch_end], stretch_key)
            stretch_start, stretch_end, stretch_key = first, last, provenance
        self._tint(cursor, positions[stretch_start], positions[stretch_end], stretch_key)
        # Inserted last to first, so the positions still ahead stay valid.
        for index in sorted(ghosts, reverse=True):
            cursor.setPosition(positions[index])
            char_format = self._ghost_format_at(cursor)
            cursor.insertText("".join(_ghost_text(ghost) for ghost in ghosts[index]), char_format)

    def _markdown_ghosts(
        self, rendered: str, mapping: list[int], token_starts: list[int]
    ) -> dict[int, list[RejectedToken]]:
        """Rejected drafts by the rendered character they go in front of (shown only)."""
        ghosts: dict[int, list[RejectedToken]] = {}
        if not self._show_rejected:
            return ghosts
        shown = [(index, source) for index, source in enumerate(mapping) if source >= 0]
        next_shown = 0
        for number, info in enumerate(self.trace.tokens):
            if not info.rejected_before:
                continue
            while next_shown < len(shown) and shown[next_shown][1] < token_starts[number]:
                next_shown += 1
            where = shown[next_shown][0] if next_shown < len(shown) else len(rendered)
            ghosts.setdefault(where, []).extend(info.rejected_before)
        trailing = self._trailing_rejected()
        if trailing:
            ghosts.setdefault(len(rendered), []).extend(trailing)
        return ghosts

    def _ghost_format_at(self, cursor: QTextCursor) -> QTextCharFormat:
        """The ghost look on the text around ``cursor`` (a code block keeps its font)."""
        char_format = QTextCharFormat(cursor.charFormat())
        char_format.clearBackground()
        char_format.setAnchor(False)
        char_format.clearProperty(QTextFormat.Property.AnchorHref)
        char_format.merge(self._style.ghost_format())
        return char_format

    def _tint(self, cursor: QTextCursor, start: int, end: int, key: Provenance | None) -> None:
        if key is None or end <= start:
            return
        full = self._style.token_format(key)
        tint = QTextCharFormat()
        if full.hasProperty(QTextFormat.Property.BackgroundBrush):
            tint.setBackground(full.background())
        tint.setUnderlineStyle(full.underlineStyle())
        if full.hasProperty(QTextFormat.Property.TextUnderlineColor):
            tint.setUnderlineColor(full.underlineColor())
        if full.fontWeight() >= QFont.Weight.Bold:
            # The legend's bold correction; a normal weight is left alone, so headings
            # and **strong** text keep theirs.
            tint.setFontWeight(full.fontWeight())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(tint)

    def showing_markdown(self) -> bool:
        return self.finished and self._markdown_wanted

    def set_show_rejected(self, on: bool) -> None:
        """Draw or drop the rejected drafts, in the token view and the rendered one."""
        if on != self._show_rejected:
            self._show_rejected = on
            self.rerender()
            self.set_markdown(self._markdown_wanted)

    def set_style(self, style: TokenStyle) -> None:
        """Use another palette (theme change) and redraw the tokens with it."""
        self._style = style
        self.rerender()
        self._markdown_key = None  # its tints are the old theme's
        self.set_markdown(self._markdown_wanted)

    def rerender(self) -> None:
        """Rebuild the token view from the kept steps (toggle or theme change: O(n) once)."""
        self.token_view.document().clear()
        self._cursor = QTextCursor(self.token_view.document())
        self._spans.clear()
        self._length = 0
        self._block_length = 0
        self._insert(self._pieces(self.trace.tokens) + self._trailing_ghosts())

    def set_is_last(self, last: bool) -> None:
        self.regenerate_button.setVisible(last)

    def set_busy(self, busy: bool) -> None:
        self.regenerate_button.setEnabled(not busy)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

    def _on_link(self, url: QUrl) -> None:
        index = code_block_index(url.toString())
        if index is not None and index < len(self._code_blocks):
            QGuiApplication.clipboard().setText(self._code_blocks[index])


def _ghost_text(token: RejectedToken) -> str:
    # A ghosted newline would reflow the answer; show it as a symbol instead.
    return token.text.replace("\n", "↵")


def _is_code(block_format: QTextBlockFormat) -> bool:
    # Qt's Markdown import marks fenced and indented code lines with their language.
    return block_format.hasProperty(QTextFormat.Property.BlockCodeLanguage) or (
        block_format.hasProperty(QTextFormat.Property.BlockCodeFence)
    )


def _shape_code_blocks(document: QTextDocument, background: QColor) -> None:
    """Shade code blocks and let them wrap like the token view's text does.

    Qt's Markdown import gives code no background of its own, so a block read as
    prose in another font. It also makes code lines unbreakable; in a narrow chat
    they would run past the message's edge, and the chat has no horizontal scroll
    bar to reach them.
    """
    cursor = QTextCursor(document)
    block = document.begin()
    while block.isValid():
        block_format = block.blockFormat()
        if _is_code(block_format):
            block_format.setNonBreakableLines(False)
            block_format.setBackground(background)
            if not _is_code(block.next().blockFormat()):
                block_format.setBottomMargin(_CODE_GAP)  # off the text that follows
        elif _is_copy_link(block) and _is_code(block.next().blockFormat()):
            # The link becomes the block's header bar, at its right like chat apps
            # put it, so it reads as belonging to the code under it.
            block_format.setAlignment(Qt.AlignmentFlag.AlignRight)
            block_format.setBackground(background)
            block_format.setBottomMargin(0)
        else:
            block = block.next()
            continue
        cursor.setPosition(block.position())
        cursor.setBlockFormat(block_format)
        block = block.next()


def _is_copy_link(block: QTextBlock) -> bool:
    """A paragraph that is just a copy link (``add_copy_links`` puts one before code)."""
    if block.text() != COPY_LINK_LABEL:
        return False
    cursor = QTextCursor(block)
    cursor.movePosition(QTextCursor.MoveOperation.NextCharacter)
    return code_block_index(cursor.charFormat().anchorHref()) is not None


def _ending_note(
    stop_reason: StopReason | None,
    stats: GenerationStats | None,
    detail: str,
    interrupted_reason: str,
    has_text: bool,
) -> str:
    if interrupted_reason:
        # The reason is the engine's or a worker's words; the note goes on after it.
        reason = with_full_stop(interrupted_reason)
        kept = " The text above was kept." if has_text else " No text had arrived yet."
        return f"⚠ Interrupted: {reason}{kept}"
    if stop_reason == StopReason.CANCELLED:
        return "Stopped by you."
    if stop_reason == StopReason.MAX_TOKENS and stats is not None:
        return f"Stopped at the answer length limit ({stats.n_predict} tokens)."
    if stop_reason == StopReason.CONTEXT_FULL:
        return "Stopped: the context window is full. Start a new chat to go on."
    if detail:
        return detail
    return ""
