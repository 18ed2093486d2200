"""A widget inside a frameless, resizing scroll area: side tabs and Tune pages use it so
their content never sets the window's minimum size.

The wheel scrolls such a page even when the pointer crosses a spin box, a combo box or
a slider on the way: Qt hands those the wheel and they change their value, so a user
scrolling the draft settings changed "Speculative sampling" to "Sample and match" and
draft-max 4 to 2 without noticing. A field takes the wheel only once it has focus
(clicked or tabbed to), as in browsers and most desktop settings pages.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
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
    """Passes the wheel of an unfocused value field to the page's scroll area."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self._area = area

    def watch(self, field: QWidget) -> None:
        # Without this a wheel turn over the field would also give it focus.
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        field.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel:
            return False
        if isinstance(watched, QWidget) and watched.hasFocus():
            return False  # the user chose this field: the wheel changes its value
        QApplication.sendEvent(self._area.viewport(), event)
        return True
