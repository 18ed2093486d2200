"""Widgets that fill in heavy parts (pyqtgraph graphs) once they are on screen.

pyqtgraph takes longer to import than the rest of the window together, so the
panels that hold graphs show first and build them on the event loop's turn after
their first paint (or earlier, when code asks for the graphs).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget


class BuildAfterFirstPaint:
    """Calls ``build`` once, on the event loop's turn after ``painted()`` is first
    called (from the widget's ``paintEvent``); ``build`` must be idempotent, since
    code may also call it directly before that turn comes."""

    def __init__(self, widget: QWidget, build: Callable[[], object]) -> None:
        self._widget = widget
        self._build = build
        self._scheduled = False

    def painted(self) -> None:
        if not self._scheduled:
            # A zero timer set before the first paint fires before the window is
            # mapped; one set from the paint fires once it is on screen.
            self._scheduled = True
            QTimer.singleShot(0, self._widget, self._build)
