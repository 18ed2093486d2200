"""A label for a number that changes several times a second."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize
from PySide6.QtWidgets import QLabel, QWidget


class SteadyLabel(QLabel):
    """A QLabel whose size only ever grows, to fit the widest text it has shown.

    A QLabel whose size may change makes every new text invalidate each layout up
    to the window. The speculation panel's numbers change five times a second
    while an answer streams, and each change laid out the whole window again and
    repainted strips of it. Pinned to a fixed size, a new value repaints the label
    alone; the layout moves only when a value needs more room than any before it
    (a rate passing 100 t/s), and that room is kept for the values after it.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._pinned: QSize | None = None
        self._grow_to_fit()

    def setText(self, text: str) -> None:  # Qt override
        super().setText(text)
        self._grow_to_fit()

    def changeEvent(self, event: QEvent) -> None:  # Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._pinned = None  # the widest text so far may now need another size
            self._grow_to_fit()

    def _grow_to_fit(self) -> None:
        needed = self.sizeHint()
        pinned = self._pinned
        size = needed if pinned is None else needed.expandedTo(pinned)
        if size != pinned:
            self._pinned = size
            self.setFixedSize(size)
