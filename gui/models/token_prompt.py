"""Asks for a Hugging Face access token; the page checks and stores it (keyring).

Shown with ``open()``, never ``exec()``: a nested event loop would stall qasync.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from gui.theme import set_role

EXPLANATION = (
    "Some models are gated or private: Hugging Face only serves them to an account that "
    "accepted their terms. Sign in on the Hugging Face website, open Settings → Access "
    "Tokens, create a token with read access and paste it here. SpecChat keeps it in "
    "your system's keyring (never in a plain file) and sends it only to the Hub."
)


class TokenPrompt(QDialog):
    """Paste a token; the owner checks it and calls ``show_error`` or ``accept``.

    Signals:
        token_entered(str): the user submitted this token.
    """

    token_entered = Signal(str)

    def __init__(self, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("token_prompt")
        self.setWindowTitle("Hugging Face token")
        self.reason_label = QLabel(reason)
        self.reason_label.setWordWrap(True)
        explanation = QLabel(EXPLANATION)
        explanation.setWordWrap(True)
        set_role(explanation, "muted")
        self.token_edit = QLineEdit()
        self.token_edit.setObjectName("token_edit")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        self.error_label = QLabel()
        self.error_label.setObjectName("token_error")
        self.error_label.setWordWrap(True)
        set_role(self.error_label, "error")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.reason_label)
        layout.addWidget(explanation)
        layout.addWidget(self.token_edit)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def _submit(self) -> None:
        token = self.token_edit.text().strip()
        if not token:
            self.show_error("Paste a token first.")
            return
        self.set_checking(True)
        self.token_entered.emit(token)

    def set_checking(self, checking: bool) -> None:
        self.buttons.setEnabled(not checking)
        self.token_edit.setEnabled(not checking)
        if checking:
            self.error_label.hide()

    def show_error(self, text: str) -> None:
        self.set_checking(False)
        self.error_label.setText(text)
        self.error_label.show()
        # The field was disabled while the Hub checked it, and lost the focus: give
        # it back with the text selected, so the next paste replaces the bad token.
        self.token_edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self.token_edit.selectAll()
        # Grow for the new line instead of squeezing the wrapped explanation.
        self.adjustSize()
