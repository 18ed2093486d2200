"""One repository's models: quantisations with size and a fit verdict, the default
highlighted, a Download button, and draft candidates found on the Hub."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.hub.drafts import HubDraftCandidate
from core.hub.file_choices import FitVerdict, ModelChoice
from core.human_units import format_bytes, format_count
from gui.models.tables import read_only_table
from gui.sentence import as_sentence
from gui.theme import set_role

COLUMNS = ("Model", "Quantisation", "Size", "This machine")
VERDICT_COLUMN = 3
VERDICT_TEXT = {
    FitVerdict.FITS: "✓ fits",
    FitVerdict.TIGHT: "~ tight",
    FitVerdict.TOO_BIG: "✗ does not fit",
    FitVerdict.UNKNOWN: "? size unknown",
}


def choice_label(choice: ModelChoice) -> str:
    label = choice.name
    if choice.sharded:
        label += f" ({len(choice.files)} parts)"
    return f"★ {label}" if choice.default else label


class RepoFilesView(QWidget):
    """Signals:
    download_requested(object): the chosen ``ModelChoice``.
    find_drafts_requested(str): look for draft repositories for this repository.
    repo_opened(str): open a draft candidate's repository.
    """

    download_requested = Signal(object)
    find_drafts_requested = Signal(str)
    repo_opened = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("repo_files")
        self.repo_id: str | None = None
        self.gated = False
        self._choices: list[ModelChoice] = []
        self._drafts: list[HubDraftCandidate] = []
        self._downloaded: set[str] = set()
        self.title = QLabel("Select a repository to see its GGUF files.")
        self.title.setObjectName("repo_title")
        self.title.setWordWrap(True)
        self.table = read_only_table("repo_files_table", COLUMNS)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("download_button")
        set_role(self.download_button, "accent")
        self.download_button.clicked.connect(self._request_download)
        self.drafts_button = QPushButton("Find drafts for this target")
        self.drafts_button.setToolTip(
            "Smaller models of the same family on the Hub: they usually share the "
            "tokenizer. The vocabulary is checked for real once one is downloaded."
        )
        self.drafts_button.clicked.connect(self._request_drafts)
        self.status_label = QLabel()
        self.status_label.setObjectName("repo_status")
        self.status_label.setWordWrap(True)
        self.drafts_table = read_only_table(
            "hub_drafts_table", ("Draft repository", "Size", "Downloads")
        )
        self.drafts_table.itemActivated.connect(self._open_draft)
        self.drafts_table.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.drafts_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.drafts_table)
        self._update_buttons()

    def show_loading(self, repo_id: str) -> None:
        self.repo_id = repo_id
        self.title.setText(f"<b>{repo_id}</b>: reading its file list…")
        self.table.setRowCount(0)
        self._choices = []
        self.drafts_table.hide()
        self.status_label.clear()
        self._update_buttons()

    def show_choices(
        self,
        repo_id: str,
        gated: bool,
        choices: list[ModelChoice],
        downloaded: frozenset[str] = frozenset(),
    ) -> None:
        """``downloaded``: names of the choices already in the app's models folder."""
        self._downloaded = set(downloaded)
        self.repo_id = repo_id
        self.gated = gated
        self._choices = choices
        access = " · gated: a token is needed" if gated else ""
        count = f"{len(choices)} GGUF model{'' if len(choices) == 1 else 's'}"
        star = " · ★ recommended for this machine" if any(c.default for c in choices) else ""
        self.title.setText(f"<b>{repo_id}</b>: {count}{star}{access}")
        self.table.setRowCount(len(choices))
        bold = QFont()
        bold.setBold(True)
        default_row = -1
        for row, choice in enumerate(choices):
            cells = [
                choice_label(choice),
                choice.quantization or "?",
                format_bytes(choice.size) if choice.size is not None else "?",
                self._verdict(choice),
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if choice.default:
                    item.setFont(bold)
                if column == 0:
                    item.setToolTip("\n".join(choice.filenames))
                self.table.setItem(row, column, item)
            if choice.default:
                default_row = row
        if default_row >= 0:
            self.table.selectRow(default_row)
        self.status_label.clear()
        self._update_buttons()

    def mark_downloaded(self, repo_id: str, filenames: tuple[str, ...]) -> None:
        """A download of this repository finished: say so on its row."""
        if repo_id != self.repo_id:
            return
        for row, choice in enumerate(self._choices):
            if choice.filenames == filenames:
                self._downloaded.add(choice.name)
                item = self.table.item(row, VERDICT_COLUMN)
                if item is not None:
                    item.setText(self._verdict(choice))

    def _verdict(self, choice: ModelChoice) -> str:
        # Short: every word here is taken from the model's name, the column that
        # stretches. The recommended one is marked by ★ there, explained in the title.
        verdict = VERDICT_TEXT[choice.verdict]
        if choice.name in self._downloaded:
            verdict += " · downloaded"
        return verdict

    def show_error(self, text: str) -> None:
        self.status_label.setText(as_sentence(text))
        set_role(self.status_label, "error")

    def show_note(self, text: str) -> None:
        self.status_label.setText(text)
        set_role(self.status_label, "muted")

    def show_drafts(self, drafts: list[HubDraftCandidate]) -> None:
        self._drafts = drafts
        self.drafts_table.setRowCount(len(drafts))
        for row, draft in enumerate(drafts):
            size = format_count(draft.parameter_count) if draft.parameter_count else "?"
            cells = [draft.repo_id, f"{size} params", format_count(draft.downloads)]
            for column, text in enumerate(cells):
                self.drafts_table.setItem(row, column, QTableWidgetItem(text))
        self.drafts_table.setVisible(bool(drafts))
        self.show_note(
            f"{len(drafts)} possible drafts (same family, smaller); double-click one to open it."
            if drafts
            else "No smaller models of the same family found on the Hub."
        )

    def choices(self) -> list[ModelChoice]:
        return list(self._choices)

    def selected_choice(self) -> ModelChoice | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        index = rows[0].row()
        return self._choices[index] if 0 <= index < len(self._choices) else None

    def select_choice(self, name: str) -> bool:
        for row, choice in enumerate(self._choices):
            if choice.name == name:
                self.table.selectRow(row)
                return True
        return False

    def _update_buttons(self) -> None:
        self.download_button.setEnabled(self.selected_choice() is not None)
        self.drafts_button.setEnabled(self.repo_id is not None)

    def _request_download(self) -> None:
        choice = self.selected_choice()
        if choice is not None:
            self.download_requested.emit(choice)

    def _request_drafts(self) -> None:
        if self.repo_id is not None:
            self.show_note("Looking for smaller models of the same family…")
            self.find_drafts_requested.emit(self.repo_id)

    def _open_draft(self, item: QTableWidgetItem) -> None:
        row = item.row()
        if 0 <= row < len(self._drafts):
            self.repo_opened.emit(self._drafts[row].repo_id)
