"""The local library as a table: one row per GGUF file, broken ones with the reason.

A ``QAbstractTableModel`` rather than a widget per cell: a folder with hundreds
of models renders in one reset, without creating thousands of items.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from core.human_units import format_bytes, format_count
from core.library.scan import ModelEntry
from gui.theme import colors

COLUMNS = (
    "Name",
    "Architecture",
    "Parameters",
    "Quantisation",
    "Size",
    "Context",
    "Chat template",
    "Location",
)
_Index = QModelIndex | QPersistentModelIndex


def entry_cells(entry: ModelEntry) -> tuple[str, ...]:
    """The row's texts; a broken file shows its reason across the metadata columns."""
    meta = entry.metadata
    location = f"{entry.source.value}: {entry.path.parent}"
    if meta is None:
        reason = f"cannot be used: {entry.error or 'unreadable'}"
        return (entry.path.name, reason, "", "", format_bytes(entry.file_size), "", "", location)
    return (
        entry.path.name,
        meta.architecture or "?",
        format_count(meta.parameter_count) if meta.parameter_count else "?",
        meta.quantization or "?",
        format_bytes(entry.file_size),
        f"{meta.context_length:,}" if meta.context_length else "?",
        "yes" if meta.has_chat_template else "no",
        location,
    )


class LibraryTableModel(QAbstractTableModel):
    """Rows of ``ModelEntry``; ``entry(row)`` gives the entry back."""

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[ModelEntry] = []
        self._cells: list[tuple[str, ...]] = []

    def set_entries(self, entries: list[ModelEntry]) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self._cells = [entry_cells(entry) for entry in self._entries]
        self.endResetModel()

    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def entry(self, row: int) -> ModelEntry | None:
        return self._entries[row] if 0 <= row < len(self._entries) else None

    def row_of(self, path: object) -> int:
        for row, entry in enumerate(self._entries):
            if entry.path == path:
                return row
        return -1

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # Qt override  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # Qt override  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # Qt override
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells[index.row()][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{self._cells[index.row()][index.column()]}\n{entry.path}"
        if role == Qt.ItemDataRole.ForegroundRole and not entry.usable:
            return QBrush(QColor(colors().error))
        return None

    def headerData(  # Qt override
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None
