"""llama.cpp's end-of-answer readout under a message, with a copy-as-text button."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from core.cli.readout import format_readout
from core.engine.events import GenerationStats


class _SideScroller(QScrollArea):
    """Scrolls its unwrapped lines sideways when narrow, and is exactly as tall as them.

    Its minimum width is small, so the readout's longest line never sets the chat's
    width; its height is the lines' plus, only when they overflow, the scroll bar's
    (height-for-width, so the message around it makes room for the bar).
    """

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setWidgetResizable(True)
        self.setWidget(content)
        # setWidget turns the content's background on; the message's should show.
        content.setAutoFillBackground(False)
        self.viewport().setAutoFillBackground(False)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def _content(self) -> QWidget:
        content = self.widget()
        assert content is not None
        return content

    def _bar_height(self, width: int) -> int:
        """Room the horizontal bar takes at ``width`` (none if the lines fit)."""
        if self._content().minimumSizeHint().width() <= width:
            return 0
        if self.style().styleHint(QStyle.StyleHint.SH_ScrollBar_Transient, None, self):
            return 0  # an overlay bar is drawn over the content
        return self.horizontalScrollBar().sizeHint().height()

    def heightForWidth(self, width: int) -> int:  # Qt override
        return self._content().sizeHint().height() + self._bar_height(width)

    def sizeHint(self) -> QSize:  # Qt override
        return self._content().sizeHint()

    def minimumSizeHint(self) -> QSize:  # Qt override
        return QSize(self.horizontalScrollBar().sizeHint().width(), self.heightForWidth(0))


class ReadoutWidget(QWidget):
    """The same lines ``specchat-cli generate`` prints, so numbers compare across the two."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readout_widget")
        self._text = ""
        self.label = QLabel()
        self.label.setObjectName("readout_text")
        self.label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Unwrapped, as in the terminal; a narrow chat scrolls it sideways.
        self.scroller = _SideScroller(self.label, self)
        self.copy_button = QPushButton("Copy readout")
        self.copy_button.setObjectName("readout_copy")
        self.copy_button.setToolTip("Copy these numbers as plain text")
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.copy_button.setEnabled(False)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.scroller)
        layout.addLayout(buttons)

    def set_stats(self, stats: GenerationStats) -> None:
        self._text = format_readout(stats)
        self.label.setText(self._text)
        self.copy_button.setEnabled(True)

    def clear(self) -> None:
        self._text = ""
        self.label.clear()
        self.copy_button.setEnabled(False)

    def text(self) -> str:
        return self._text

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self._text)
