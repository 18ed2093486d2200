"""A widget inside a frameless, resizing scroll area: side tabs and Tune pages use it so
their content never sets the window's minimum size.

The wheel scrolls such a page even when the pointer crosses a spin box, a combo box or
a slider on the way: Qt hands those the wheel and they change their value, so a user
scrolling the draft settings changed "Speculative sampling" to "Sample and match" and
draft-max 4 to 2 without noticing. A field takes the wheel only once it was clicked;
a field reached with Tab still scrolls the page under the wheel (the pointer may rest
on it by chance), and takes the arrow keys as usual.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFrame,
    QScrollArea,
    QWidget,
)

_VALUE_FIELDS = (QAbstractSpinBox, QComboBox, QAbstractSlider)


def scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    guard = _WheelScrollsPage(area)
    for field in widget.findChildren(QWidget):
        if isinstance(field, _VALUE_FIELDS):
            guard.watch(field)
    return area


class _WheelScrollsPage(QObject):
    """Passes the wheel of a value field not clicked into to the page's scroll area."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self._area = area
        self._clicked: QObject | None = None  # the field the user clicked into

    def watch(self, field: QWidget) -> None:
        # Without this a wheel turn over the field would also give it focus.
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        field.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.FocusIn and isinstance(event, QFocusEvent):
            mouse = event.reason() == Qt.FocusReason.MouseFocusReason
            self._clicked = watched if mouse else None
        elif kind == QEvent.Type.FocusOut and self._clicked is watched:
            self._clicked = None
        elif kind == QEvent.Type.Wheel:
            if self._clicked is watched and isinstance(watched, QWidget) and watched.hasFocus():
                return False  # the user chose this field: the wheel changes its value
            QApplication.sendEvent(self._area.viewport(), event)
            return True
        return False
