"""The Library tab: where models are looked for, the table of every GGUF file,
actions on the selected one, and its drafts and memory fit.

Only renders and emits intents; the page scans, deletes and reveals.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelection, Qt, Signal, SignalInstance
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.library import ModelEntry, SystemMemory
from gui.models.library_table import LibraryTableModel
from gui.models.pairing_view import PairingView
from gui.sentence import as_sentence
from gui.theme import set_role

MAX_COLUMN_WIDTH = 260


class LibraryView(QWidget):
    """Signals:
    use_as_target(object), use_as_draft(object), reveal_requested(object): a ``Path``.
    delete_requested(object): the ``ModelEntry`` to delete (after confirmation).
    folder_added(object), folder_removed(object): a folder ``Path``.
    rescan_requested(): look again.
    """

    use_as_target = Signal(object)
    use_as_draft = Signal(object)
    reveal_requested = Signal(object)
    delete_requested = Signal(object)
    folder_added = Signal(object)
    folder_removed = Signal(object)
    rescan_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("library_view")
        self._system: SystemMemory | None = None
        self._deletable: set[Path] = set()
        self.model = LibraryTableModel()
        self.table = QTableView()
        self.table.setObjectName("library_table")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.status_label = QLabel("Looking for models…")
        self.status_label.setObjectName("library_status")
        self.status_label.setWordWrap(True)
        set_role(self.status_label, "muted")

        self.folders_list = QListWidget()
        self.folders_list.setObjectName("library_folders")
        self.folders_list.setMaximumHeight(84)
        self.add_folder_button = QPushButton("Add folder…")
        self.remove_folder_button = QPushButton("Remove folder")
        self.remove_folder_button.setToolTip("Stop looking in this folder (nothing is deleted)")
        self.rescan_button = QPushButton("Rescan")
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.remove_folder_button.clicked.connect(self._remove_folder)
        self.rescan_button.clicked.connect(self.rescan_requested)
        self.folders_list.currentRowChanged.connect(self._update_buttons)
        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(self.add_folder_button)
        folder_buttons.addWidget(self.remove_folder_button)
        folder_buttons.addWidget(self.rescan_button)
        folder_buttons.addStretch(1)
        folders_row = QHBoxLayout()
        folders_row.addWidget(self.folders_list, 1)
        folders_row.addLayout(folder_buttons)
        self._user_folders: list[Path] = []

        self.target_button = QPushButton("Use as target")
        self.target_button.setObjectName("use_target_button")
        set_role(self.target_button, "accent")
        self.draft_button = QPushButton("Use as draft")
        self.draft_button.setObjectName("use_draft_button")
        self.reveal_button = QPushButton("Show in file manager")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("delete_button")
        self.target_button.clicked.connect(lambda: self._emit_path(self.use_as_target))
        self.draft_button.clicked.connect(lambda: self._emit_path(self.use_as_draft))
        self.reveal_button.clicked.connect(lambda: self._emit_path(self.reveal_requested))
        self.delete_button.clicked.connect(self._request_delete)
        actions = QHBoxLayout()
        for button in (self.target_button, self.draft_button, self.reveal_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.delete_button)

        self.pairing = PairingView()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(folders_row)
        left_layout.addWidget(self.status_label)
        left_layout.addWidget(self.table, 1)
        left_layout.addLayout(actions)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.pairing)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_buttons()

    def show_folders(self, app_folder: Path, user: list[tuple[Path, bool]], hf_cache: Path) -> None:
        """The folders looked in; ``user`` pairs each added folder with whether it exists."""
        self._user_folders = [folder for folder, _exists in user]
        self.folders_list.clear()
        self.folders_list.addItem(f"SpecChat's models folder: {app_folder}")
        for folder, exists in user:
            missing = "" if exists else " (missing)"
            self.folders_list.addItem(f"Added folder: {folder}{missing}")
        self.folders_list.addItem(f"Hugging Face cache: {hf_cache}")
        self._update_buttons()

    def show_entries(
        self, entries: list[ModelEntry], system: SystemMemory, deletable: set[Path]
    ) -> None:
        """Replace the table, keeping the selected file selected."""
        selected = self.selected_entry()
        self._system = system
        self._deletable = deletable
        self.model.set_entries(entries)
        self.table.resizeColumnsToContents()
        for column in range(self.model.columnCount()):
            # A long reason or path must not push the other columns out of sight;
            # the whole text is in the tooltip.
            if self.table.columnWidth(column) > MAX_COLUMN_WIDTH:
                self.table.setColumnWidth(column, MAX_COLUMN_WIDTH)
        usable = sum(1 for entry in entries if entry.usable)
        broken = len(entries) - usable
        text = f"{usable} model{'s' if usable != 1 else ''}"
        if broken:
            text += f", {broken} that cannot be used (reason in the table)"
        self.status_label.setText(text if entries else "No GGUF files in these folders yet.")
        set_role(self.status_label, "muted")
        if selected is not None and self.select_path(selected.path):
            return
        self._show_selected()

    def show_error(self, text: str) -> None:
        self.status_label.setText(as_sentence(text))
        set_role(self.status_label, "error")

    def select_path(self, path: Path) -> bool:
        row = self.model.row_of(path)
        if row < 0:
            return False
        self.table.selectRow(row)
        self._show_selected()
        return True

    def selected_entry(self) -> ModelEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.entry(rows[0].row()) if rows else None

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        self.pairing.set_target(self.selected_entry(), self.model.entries(), self._system)
        self._update_buttons()

    def _update_buttons(self) -> None:
        entry = self.selected_entry()
        usable = entry is not None and entry.usable
        self.target_button.setEnabled(usable)
        self.draft_button.setEnabled(usable)
        self.reveal_button.setEnabled(entry is not None)
        deletable = entry is not None and entry.path in self._deletable
        self.delete_button.setEnabled(deletable)
        self.delete_button.setToolTip(
            "Delete this downloaded model from disk"
            if deletable
            else "Only models SpecChat downloaded can be deleted here; others are only read"
        )
        row = self.folders_list.currentRow()
        self.remove_folder_button.setEnabled(1 <= row <= len(self._user_folders))

    def _emit_path(self, signal: SignalInstance) -> None:
        entry = self.selected_entry()
        if entry is not None:
            signal.emit(entry.path)

    def _request_delete(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.delete_requested.emit(entry)

    def _choose_folder(self) -> None:
        # open() rather than exec(): a nested event loop would stall the qasync loop.
        dialog = QFileDialog(self, "Add a models folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.folder_added.emit(Path(path)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _remove_folder(self) -> None:
        row = self.folders_list.currentRow()
        if 1 <= row <= len(self._user_folders):
            self.folder_removed.emit(self._user_folders[row - 1])
