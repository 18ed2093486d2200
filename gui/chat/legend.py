"""The legend for token colours: each label drawn in the very format the chat uses."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QSize
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QPainter,
    QPaintEvent,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from core.engine.events import Provenance
from gui.chat.flow_layout import FlowLayout
from gui.chat.token_formats import (
    REJECTED_DESCRIPTION,
    REJECTED_LABEL,
    TokenFormats,
    token_formats,
)
from gui.theme import is_dark, theme_notifier

# The order a reader meets them in a speculative answer.
_ORDER = (
    Provenance.DRAFT_ACCEPTED,
    Provenance.TARGET_CORRECTION,
    Provenance.TARGET_BONUS,
    Provenance.TARGET_ONLY,
)


class _FormatSample(QWidget):
    """A word painted through a QTextDocument, so wavy and dotted underlines show exactly."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = text
        self._document = QTextDocument(self)
        self._document.setDocumentMargin(1)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_format(self, char_format: QTextCharFormat) -> None:
        self._document.clear()
        self._document.setDefaultFont(self.font())
        QTextCursor(self._document).insertText(self._text, char_format)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # Qt override
        size = self._document.size()
        return QSize(math.ceil(size.width()), math.ceil(size.height()))

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        painter = QPainter(self)
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette = self.palette()
        self._document.documentLayout().draw(painter, context)
        painter.end()


class ProvenanceLegend(QWidget):
    """One line: accepted draft, correction, bonus, target only (and rejected drafts when shown)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("provenance_legend")
        # Wraps onto a second row in a narrow window instead of cutting entries off.
        layout = FlowLayout(self, spacing=10)
        layout.setContentsMargins(4, 2, 4, 2)
        title = QLabel("Tokens:")
        layout.addWidget(title)
        self.samples: dict[Provenance | str, _FormatSample] = {}
        for provenance in _ORDER:
            sample = _FormatSample(token_formats(False).style(provenance).label, self)
            sample.setToolTip(token_formats(False).style(provenance).description)
            self.samples[provenance] = sample
            layout.addWidget(sample)
        self.rejected_sample = _FormatSample(REJECTED_LABEL, self)
        self.rejected_sample.setToolTip(REJECTED_DESCRIPTION)
        self.rejected_sample.hide()  # rejected drafts are off in the chat by default
        self.samples[REJECTED_LABEL] = self.rejected_sample
        layout.addWidget(self.rejected_sample)
        self._dark: bool | None = None
        self.refresh()
        theme_notifier().theme_changed.connect(self._on_theme_changed)

    def set_show_rejected(self, on: bool) -> None:
        """Show the rejected-draft entry while the chat shows rejected drafts."""
        self.rejected_sample.setVisible(on)

    def formats(self) -> TokenFormats:
        return token_formats(is_dark())

    def refresh(self) -> None:
        """Redraw the samples in the formats of the theme in use."""
        dark = is_dark()
        if dark == self._dark:
            return
        self._dark = dark
        formats = token_formats(dark)
        for provenance in _ORDER:
            self.samples[provenance].set_format(formats.token_format(provenance))
        self.rejected_sample.set_format(formats.ghost_format())

    def _on_theme_changed(self, _dark: bool) -> None:
        self.refresh()

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        # A palette set without apply_theme (a test, a platform theme) still counts.
        if event.type() == QEvent.Type.PaletteChange:
            self.refresh()
        super().changeEvent(event)
