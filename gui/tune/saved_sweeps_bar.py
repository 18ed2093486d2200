"""The loaded pair's saved sweeps: a list to pick one from, Load, Delete, Delete older.

Every finished or cancelled sweep is saved with its pair (core/tune/results_store); this
bar lists them newest first. Loading is the page's job (it predicts and shows the
result), so the bar only asks for it.

Signals:
    load_requested(object): the SavedSweep chosen to be shown.
    message(str): what a deletion did, or why it failed, for the page's status line.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from core.errors import ConfigError
from core.tune.results_store import SavedSweep, delete_older, delete_saved, saved_sweeps

NONE_SAVED = "None saved for this pair yet: a sweep is saved when it ends"
NO_PAIR = "Load a model pair to see its saved sweeps"


class SavedSweepsBar(QWidget):
    """The saved sweeps of one pair (see the module docstring)."""

    load_requested = Signal(object)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pair: str | None = None
        self.entries: list[SavedSweep] = []
        self.combo = QComboBox()
        self.combo.setObjectName("sweep_history")
        self.combo.setToolTip("The sweeps saved for the loaded pair, newest first")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setPlaceholderText(NO_PAIR)
        self.combo.currentIndexChanged.connect(self._update_buttons)
        self.load_button = QPushButton("Load saved")
        self.load_button.setToolTip("Show the saved sweep chosen in the list")
        self.load_button.clicked.connect(self._ask_load)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the saved sweep chosen in the list")
        self.delete_button.clicked.connect(self.delete_selected)
        self.delete_older_button = QPushButton("Delete older")
        self.delete_older_button.setToolTip(
            "Delete every saved sweep of this pair older than the one chosen in the list"
        )
        self.delete_older_button.clicked.connect(self.delete_older_than_selected)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Saved sweeps"))
        row.addWidget(self.combo, 1)
        for button in (self.load_button, self.delete_button, self.delete_older_button):
            row.addWidget(button)
        self._update_buttons()

    def refresh(self, pair: str | None) -> None:
        """List ``pair``'s saved sweeps, newest first (none without a pair)."""
        self.pair = pair
        self.entries = saved_sweeps(pair) if pair is not None else []
        self.combo.clear()
        for entry in self.entries:
            self.combo.addItem(entry.describe())
        self.combo.setPlaceholderText(NO_PAIR if pair is None else NONE_SAVED)
        # With a placeholder set, Qt leaves a filled list unchosen: choose the newest.
        self.combo.setCurrentIndex(0 if self.entries else -1)
        self._update_buttons()

    def selected(self) -> SavedSweep | None:
        index = self.combo.currentIndex()
        return self.entries[index] if 0 <= index < len(self.entries) else None

    def _ask_load(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.load_requested.emit(entry)

    def delete_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        try:
            delete_saved(entry)
        except ConfigError as exc:
            self.message.emit(str(exc))
            return
        self.refresh(self.pair)
        self.message.emit(f"Deleted the sweep of {entry.saved_at}.")

    def delete_older_than_selected(self) -> None:
        entry = self.selected()
        if self.pair is None or entry is None:
            return
        try:
            count = delete_older(self.pair, keep=self.entries.index(entry) + 1)
        except ConfigError as exc:
            self.message.emit(str(exc))
            return
        self.refresh(self.pair)
        self.combo.setCurrentIndex(len(self.entries) - 1)
        self.message.emit(f"Deleted {count} older sweep{'s' if count != 1 else ''}.")

    def _update_buttons(self) -> None:
        # Nothing to act on: an empty list, or (for Delete older) the oldest chosen.
        index = self.combo.currentIndex()
        chosen = 0 <= index < len(self.entries)
        self.load_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)
        self.delete_older_button.setEnabled(chosen and index < len(self.entries) - 1)
