"""The scrolling column of messages of one conversation."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from core.speculation.trace import AnswerTrace
from gui.chat.message_widgets import AnswerWidget, MessageWidget, TokenStyle, UserMessageWidget

# Within this many pixels of the end counts as "at the bottom" (rounding, fractional DPI).
_BOTTOM_SLACK = 8

_LEGEND_HINT = "Each token is coloured by where it came from: see the legend."
_PLACEHOLDER_NO_PAIR = f"Load a model pair on the right, then type a message below.\n{_LEGEND_HINT}"
_PLACEHOLDER_READY = f"Type a message below to start.\n{_LEGEND_HINT}"


class ChatView(QScrollArea):
    """Messages top to bottom; follows new text only while the user is at the bottom.

    Signals:
        regenerate_requested(int): Regenerate on the answer with this message id.
        edit_submitted(int, str): a user message was edited; resend it.
    """

    regenerate_requested = Signal(int)
    edit_submitted = Signal(int, str)

    def __init__(self, style: TokenStyle, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chat_view")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._style = style
        self._show_rejected = False
        self._markdown = True
        self._busy = False
        self._follow = True
        self._messages: list[MessageWidget] = []

        self._column = QWidget()
        self._column.setObjectName("chat_column")
        self._layout = QVBoxLayout(self._column)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self._layout.setSpacing(8)
        self.placeholder = QLabel(_PLACEHOLDER_NO_PAIR)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self._layout.addWidget(self.placeholder)
        self._layout.addStretch(1)
        self.setWidget(self._column)

        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    def minimumSizeHint(self) -> QSize:  # Qt override
        # Messages wrap their text and buttons to any width down to their own minimum
        # (a role and its widest button); below that the column would be wider than the
        # view and, with no horizontal bar, cut off. So that is this view's minimum too.
        hint = super().minimumSizeHint()
        column = self._column.minimumSizeHint().width()
        extra = self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(max(hint.width(), column + extra), hint.height())

    # ----- building --------------------------------------------------------------

    def clear(self) -> None:
        for widget in self._messages:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self._messages.clear()
        self._follow = True
        self._update_chrome()

    def add_user_message(self, message_id: int, text: str) -> UserMessageWidget:
        widget = UserMessageWidget(message_id, text, self._column)
        widget.edit_submitted.connect(self.edit_submitted)
        widget.edit_started.connect(lambda: self._reveal_editor(widget))
        self._add(widget)
        return widget

    def _reveal_editor(self, widget: UserMessageWidget) -> None:
        # The editor is taller than the text it replaces: a chat following its end
        # would push the message's top out of view; show the message from its top.
        self._follow = False
        QTimer.singleShot(0, self, lambda: self.ensureWidgetVisible(widget, 0, 8))

    def add_answer(self, message_id: int, trace: AnswerTrace) -> AnswerWidget:
        widget = AnswerWidget(
            message_id, trace, self._style, self._show_rejected, self._markdown, self._column
        )
        widget.regenerate_requested.connect(self.regenerate_requested)
        # Fourteen lines of readout per answer would bury the conversation: only the
        # newest answer's stays open; the others fold to their Stats button.
        for older in self.answers():
            older.set_readout_visible(False)
        self._add(widget)
        return widget

    def _add(self, widget: MessageWidget) -> None:
        # Before the trailing stretch, so messages stay at the top of a short chat.
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self._messages.append(widget)
        widget.set_busy(self._busy)
        self._update_chrome()
        self.updateGeometry()  # the minimum width may have grown

    def remove_from(self, message_id: int) -> None:
        """Remove the message with this id and every one after it."""
        ids = [m.message_id for m in self._messages]
        if message_id not in ids:
            return
        index = ids.index(message_id)
        for widget in self._messages[index:]:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        del self._messages[index:]
        self._update_chrome()

    def remove_after(self, message_id: int) -> None:
        ids = [m.message_id for m in self._messages]
        if message_id in ids and ids.index(message_id) + 1 < len(ids):
            self.remove_from(ids[ids.index(message_id) + 1])

    # ----- queries ---------------------------------------------------------------

    def mark_hidden_turns(self, count: int) -> None:
        """Mark the messages of the ``count`` oldest turns (a question and its answers)
        as not seen by the model: they were dropped to fit the context."""
        turn = -1
        for widget in self._messages:
            if isinstance(widget, UserMessageWidget):
                turn += 1
            widget.set_hidden_from_model(0 <= turn < count)

    def messages(self) -> list[MessageWidget]:
        return list(self._messages)

    def answers(self) -> list[AnswerWidget]:
        return [m for m in self._messages if isinstance(m, AnswerWidget)]

    def message(self, message_id: int) -> MessageWidget | None:
        for widget in self._messages:
            if widget.message_id == message_id:
                return widget
        return None

    # ----- display options ---------------------------------------------------------

    def set_show_rejected(self, on: bool) -> None:
        self._show_rejected = on
        for answer in self.answers():
            answer.set_show_rejected(on)

    def set_markdown(self, on: bool) -> None:
        self._markdown = on
        for answer in self.answers():
            answer.set_markdown(on)

    def set_style(self, style: TokenStyle) -> None:
        self._style = style
        for answer in self.answers():
            answer.set_style(style)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in self._messages:
            widget.set_busy(busy)

    def scroll_to_bottom(self) -> None:
        self._follow = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - _BOTTOM_SLACK

    def set_pair_loaded(self, loaded: bool) -> None:
        """The empty-chat hint says what to do next: load a pair, or just type."""
        self.placeholder.setText(_PLACEHOLDER_READY if loaded else _PLACEHOLDER_NO_PAIR)

    def _update_chrome(self) -> None:
        self.placeholder.setVisible(not self._messages)
        answers = self.answers()
        for answer in answers:
            answer.set_is_last(self._messages[-1] is answer)

    # The scroll bar's range grows as text arrives: keep pinned to the end only if the
    # user was there, so reading earlier text is never yanked away.
    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - _BOTTOM_SLACK

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)
