"""llama.cpp's end-of-answer readout under a message, with a copy-as-text button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.cli.readout import format_readout
from core.engine.events import GenerationStats


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
        layout.addWidget(self.label)
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
