"""A row of widgets that wraps onto more rows when its space runs out (Qt's flow layout)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget


class FlowLayout(QLayout):
    """Widgets left to right in rows aligned to the right edge, wrapping when narrow.

    Its preferred size is one row; its minimum width is only the widest widget, and
    its height follows the width it gets (height-for-width), so a narrow message
    gets a second row of buttons instead of forcing the whole chat column wider.
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 2) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._gap = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # Qt override
        self._items.append(item)

    def count(self) -> int:  # Qt override
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # Qt override
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # Qt override
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:  # Qt override
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:  # Qt override
        sizes = [item.sizeHint() for item in self._shown()]
        width = sum(size.width() for size in sizes) + self._gap * max(len(sizes) - 1, 0)
        height = max((size.height() for size in sizes), default=0)
        return self._with_margins(QSize(width, height))

    def minimumSize(self) -> QSize:  # Qt override
        size = QSize(0, 0)
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        return self._with_margins(size)

    def _shown(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _with_margins(self, size: QSize) -> QSize:
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, apply: bool) -> int:
        """Fill rows up to ``rect``'s width; place the items if ``apply``. Returns the height."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        rows: list[list[tuple[QLayoutItem, QSize]]] = []
        row_width = 0
        for item in self._shown():
            size = item.sizeHint()
            if rows and row_width + self._gap + size.width() <= area.width():
                rows[-1].append((item, size))
                row_width += self._gap + size.width()
            else:
                rows.append([(item, size)])
                row_width = size.width()
        y = area.y()
        for row in rows:
            width = sum(size.width() for _, size in row) + self._gap * (len(row) - 1)
            height = max(size.height() for _, size in row)
            x = area.x() + max(area.width() - width, 0)
            for item, size in row:
                if apply:
                    offset = (height - size.height()) // 2
                    item.setGeometry(QRect(QPoint(x, y + offset), size))
                x += size.width() + self._gap
            y += height + self._gap
        used = y - self._gap - area.y() if rows else 0
        return used + margins.top() + margins.bottom()
