"""The conversations list: new, search, rename in place, delete with undo.

The sidebar only shows what it is given and emits intents; the main window asks
the store and feeds the results back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from PySide6.QtCore import QPoint, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

UNDO_SECONDS = 10
ANSWERING_TIP = "An answer is being written here."
_ID_ROLE = Qt.ItemDataRole.UserRole
_TITLE_ROLE = Qt.ItemDataRole.UserRole + 1


class ConversationRow(Protocol):
    """What the sidebar reads from a store summary."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def preview(self) -> str: ...


class ConversationSidebar(QWidget):
    """List of conversations with search and an undo bar for deletions.

    Signals:
        new_requested(): Ctrl+N or the New button.
        selected(int): the user opened a conversation.
        rename_requested(int, str): a title was edited in place.
        delete_requested(int): the user deleted a conversation.
        undo_delete_requested(int): the user pressed Undo on the last deletion.
        search_changed(str): the search text changed.
    """

    new_requested = Signal()
    selected = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    undo_delete_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversation_sidebar")
        self._filling = False
        self._deleted_id: int | None = None

        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)

        self.search = QLineEdit()
        self.search.setObjectName("conversation_search")
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.search_changed)

        self.list = QListWidget()
        self.list.setObjectName("conversation_list")
        # Long titles end in "…" (the tooltip has all of it) instead of a scroll bar.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._show_menu)
        self.list.itemActivated.connect(self._on_activated)
        self.list.itemClicked.connect(self._on_activated)
        self.list.itemChanged.connect(self._on_item_changed)

        # F2 lives on the window's Chat menu; a second F2 here would be ambiguous.
        rename = QAction("Rename (F2)", self.list)
        rename.triggered.connect(self.rename_current)
        delete = QAction("Delete", self.list)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(self.delete_current)
        self.list.addActions([rename, delete])

        self.undo_bar = QFrame()
        self.undo_bar.setObjectName("undo_bar")
        self.undo_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.undo_label = QLabel()
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self._undo)
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(6, 4, 6, 4)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_timer = QTimer(self)
        self._undo_timer.setObjectName("sidebar_undo_timer")
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self.hide_undo)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.undo_bar)

    def set_conversations(
        self,
        rows: Sequence[ConversationRow],
        current_id: int | None,
        answering_id: int | None = None,
    ) -> None:
        """Replace the list; keeps ``current_id`` selected when it is among ``rows``.

        ``answering_id``: the conversation an answer is being written for, marked so
        it can be found while another one is open.
        """
        self._filling = True
        try:
            self.list.clear()
            for row in rows:
                item = QListWidgetItem(row.title or "Untitled")
                item.setData(_ID_ROLE, row.id)
                item.setData(_TITLE_ROLE, item.text())
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                when = datetime.fromtimestamp(row.updated_at).strftime("%Y-%m-%d %H:%M")
                preview = row.preview.strip().replace("\n", " ")[:200]
                tip = f"{row.title}\n{when}\n{preview}" if preview else when
                if row.id == answering_id:
                    item.setIcon(self._answering_icon())
                    tip = f"{ANSWERING_TIP}\n{tip}"
                item.setToolTip(tip)
                self.list.addItem(item)
                if row.id == current_id:
                    self.list.setCurrentItem(item)
        finally:
            self._filling = False

    def answering_row(self) -> int | None:
        """The row marked as being answered, if any."""
        for index in range(self.list.count()):
            if not self.list.item(index).icon().isNull():
                return index
        return None

    def _answering_icon(self) -> QIcon:
        # A dot in the selection colour, ringed in the selected text's colour so it
        # shows on a selected row too; an icon, because the title is what the
        # in-place rename edits.
        size = self.list.fontMetrics().height()
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.setPen(QPen(palette.color(QPalette.ColorRole.HighlightedText), 1.5))
        painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
        radius = size / 3.5
        painter.drawEllipse(QPointF(size / 2, size / 2), radius, radius)
        painter.end()
        return QIcon(pixmap)

    def conversation_ids(self) -> list[int]:
        return [self._item_id(self.list.item(i)) for i in range(self.list.count())]

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return self._item_id(item) if item is not None else None

    def rename_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def delete_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.delete_requested.emit(self._item_id(item))

    def show_undo(self, conversation_id: int, title: str) -> None:
        """Offer to bring back a conversation that was just deleted."""
        self._deleted_id = conversation_id
        self.undo_label.setText(f"Deleted “{title}”")
        self.undo_bar.show()
        self._undo_timer.start()

    def hide_undo(self) -> None:
        self._deleted_id = None
        self._undo_timer.stop()
        self.undo_bar.hide()

    def _undo(self) -> None:
        if self._deleted_id is not None:
            conversation_id = self._deleted_id
            self.hide_undo()
            self.undo_delete_requested.emit(conversation_id)

    def _show_menu(self, position: QPoint) -> None:
        item = self.list.itemAt(position)
        if item is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addActions(self.list.actions())
        menu.popup(self.list.viewport().mapToGlobal(position))

    def _on_activated(self, item: QListWidgetItem) -> None:
        self.selected.emit(self._item_id(item))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        title = item.text().strip()
        if title:
            self.rename_requested.emit(self._item_id(item), title)
            return
        # A title erased in place: the conversation keeps its name, so does the row.
        self._filling = True
        try:
            item.setText(str(item.data(_TITLE_ROLE)))
        finally:
            self._filling = False

    @staticmethod
    def _item_id(item: QListWidgetItem) -> int:
        value: Any = item.data(_ID_ROLE)
        return int(value)
