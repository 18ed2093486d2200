"""Searching the Hub: a debounced query box, a sort order and the results table.

The view emits what to search for; the page runs the search off the GUI thread
and hands back results or an error message.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.hub.search import RepoSummary
from core.human_units import format_count
from gui.models.tables import read_only_table
from gui.sentence import as_sentence
from gui.theme import set_role

# Long enough that typing a word sends one request, short enough to feel live.
DEBOUNCE_MS = 350
SORT_LABELS = {"downloads": "Most downloaded", "likes": "Most liked", "updated": "Recently updated"}
COLUMNS = ("Repository", "Author", "Downloads", "Likes", "Updated", "Access", "Licence")


class _NumberItem(QTableWidgetItem):
    """Sorts by the number behind the text ("1.2M" after "900k")."""

    def __init__(self, value: int, text: str) -> None:
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine = self.data(Qt.ItemDataRole.UserRole)
        theirs = other.data(Qt.ItemDataRole.UserRole)
        return bool(mine < theirs) if theirs is not None else False


class HubSearchView(QWidget):
    """Signals:
    search_requested(str, str): query text and sort key (``core.hub.search.SORT_KEYS``).
    repo_opened(str): the user opened this repository.
    """

    search_requested = Signal(str, str)
    repo_opened = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hub_search")
        self.query_edit = QLineEdit()
        self.query_edit.setObjectName("hub_query")
        self.query_edit.setPlaceholderText("Search Hugging Face for GGUF models, e.g. qwen2.5")
        self.query_edit.setClearButtonEnabled(True)
        self.sort_combo = QComboBox()
        for key, label in SORT_LABELS.items():
            self.sort_combo.addItem(label, key)
        self.status_label = QLabel("Type to search the Hugging Face Hub.")
        self.status_label.setObjectName("hub_search_status")
        self.status_label.setWordWrap(True)
        set_role(self.status_label, "muted")
        self.table = read_only_table("hub_results", COLUMNS)
        self.table.itemSelectionChanged.connect(self._on_selected)

        self._debounce = QTimer(self)
        self._debounce.setObjectName("hub_search_debounce")
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self.query_edit.textChanged.connect(self._debounce.start)
        self.query_edit.returnPressed.connect(self.search_now)
        self.sort_combo.currentIndexChanged.connect(self.search_now)

        row = QHBoxLayout()
        row.addWidget(self.query_edit, 1)
        row.addWidget(self.sort_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)
        self._results: list[RepoSummary] = []
        self._searched = False

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        # An empty table under "Type to search" looked broken; the most downloaded
        # GGUF repositories are a useful start, as other apps' model browsers show.
        if not self._searched:
            self.search_now()
        super().showEvent(event)

    def sort_key(self) -> str:
        return str(self.sort_combo.currentData())

    def search_now(self) -> None:
        self._searched = True
        self._debounce.stop()
        query = self.query_edit.text().strip()
        self.status_label.setText(f"Searching for “{query}”…" if query else "Searching…")
        set_role(self.status_label, "muted")
        self.search_requested.emit(query, self.sort_key())

    def show_results(self, results: list[RepoSummary]) -> None:
        self._results = results
        table = self.table
        # A row left selected from the last results would stay highlighted without
        # being opened, and clicking it would change nothing: start unselected (and
        # with no current row, so the first Down key selects the first result).
        table.selectionModel().clear()
        table.setSortingEnabled(False)
        table.setRowCount(len(results))
        for row, repo in enumerate(results):
            updated = repo.last_modified.strftime("%Y-%m-%d") if repo.last_modified else "?"
            name = QTableWidgetItem(repo.repo_id)
            name.setData(Qt.ItemDataRole.UserRole, repo.repo_id)
            cells = [
                name,
                QTableWidgetItem(repo.author),
                _NumberItem(repo.downloads, format_count(repo.downloads)),
                _NumberItem(repo.likes, format_count(repo.likes)),
                QTableWidgetItem(updated),
                QTableWidgetItem("gated: token needed" if repo.gated else "open"),
                QTableWidgetItem(repo.license or "not stated"),
            ]
            for column, item in enumerate(cells):
                table.setItem(row, column, item)
        count = len(results)
        if not count:
            text = "No GGUF repositories match."
        elif not self.query_edit.text().strip():
            text = (
                f"{self.sort_combo.currentText()} GGUF repositories: type to search, "
                "or select one to see its files."
            )
        else:
            text = (
                f"{count} repositor{'y' if count == 1 else 'ies'} with GGUF files; "
                "select one to see its files."
            )
        self.status_label.setText(text)
        set_role(self.status_label, "muted")

    def show_error(self, text: str) -> None:
        self.status_label.setText(as_sentence(text))
        set_role(self.status_label, "error")

    def repo_ids(self) -> list[str]:
        return [repo.repo_id for repo in self._results]

    def open_repo(self, repo_id: str) -> None:
        self.repo_opened.emit(repo_id)

    def _on_activated(self, item: QTableWidgetItem) -> None:
        name = self.table.item(item.row(), 0)
        if name is not None:
            self.repo_opened.emit(str(name.data(Qt.ItemDataRole.UserRole)))

    def _on_selected(self) -> None:
        items = self.table.selectedItems()
        if items:
            self._on_activated(items[0])
