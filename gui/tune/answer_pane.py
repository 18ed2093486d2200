"""One finished answer, its tokens coloured by provenance exactly as in the chat."""

from __future__ import annotations

from itertools import groupby

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from core.engine import GenerationResult
from gui.chat.token_formats import token_formats
from gui.theme import is_dark, set_role


class AnswerPane(QWidget):
    """A title, the coloured answer and a line of numbers under it."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(f"<b>{title}</b>")
        self.text_view = QTextBrowser()
        self.text_view.setObjectName("answer_text")
        self.numbers = QLabel("—")
        self.numbers.setObjectName("answer_numbers")
        set_role(self.numbers, "muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.text_view, 1)
        layout.addWidget(self.numbers)

    def show_result(self, result: GenerationResult) -> None:
        """Insert one run per same-provenance stretch, in one edit block (as the chat does)."""
        formats = token_formats(is_dark())
        self.text_view.clear()
        cursor = QTextCursor(self.text_view.document())
        cursor.beginEditBlock()
        for provenance, tokens in groupby(result.tokens, key=lambda token: token.provenance):
            cursor.insertText("".join(t.text for t in tokens), formats.token_format(provenance))
        cursor.endEditBlock()
        stats = result.stats
        accept = f", acceptance {stats.acceptance * 100:.0f}%" if stats.n_drafted else ""
        self.numbers.setText(
            f"{stats.n_predict} tokens, {stats.decode_tokens_per_second:.1f} tokens/s{accept}"
        )

    def text(self) -> str:
        return self.text_view.toPlainText()
