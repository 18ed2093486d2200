"""The message input: Enter (or Ctrl+Enter) sends, Shift+Enter breaks the line, Esc stops."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QSizePolicy, QWidget

_RETURN_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class InputBox(QPlainTextEdit):
    """Multi-line message editor.

    Signals:
        submitted(str): the user asked to send this (non-blank) text.
        stop_requested(): Esc was pressed.
    """

    submitted = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("message_input")
        self.setPlaceholderText("Message… (Enter sends, Shift+Enter for a new line, Esc stops)")
        self.setTabChangesFocus(True)
        # Three lines by default, up to six: a paragraph fits without eating the chat.
        self._line = self.fontMetrics().lineSpacing()
        self.setMaximumHeight(self._line * 6 + 16)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(400, self._line * 3 + 16)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override
        key = event.key()
        modifiers = event.modifiers()
        if key in _RETURN_KEYS and not modifiers & Qt.KeyboardModifier.ShiftModifier:
            self.submit()
            event.accept()
            return
        if key == Qt.Key.Key_Escape:
            self.stop_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        """Emit the text and clear the box; blank text is ignored."""
        text = self.toPlainText()
        if not text.strip():
            return
        self.clear()
        self.submitted.emit(text)
