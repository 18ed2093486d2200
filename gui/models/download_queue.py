"""The download queue: one row per model with its progress, and pause/resume/cancel.

Rows render ``core.hub.jobs.JobSnapshot``s; buttons only emit intents. The page
refreshes the rows on a timer, so a fast download never floods the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.hub.download import DownloadState
from core.hub.jobs import JobSnapshot, JobState
from core.human_units import format_bytes, format_duration
from gui.theme import set_role

STATE_WORDS = {
    JobState.QUEUED: "Queued",
    JobState.DOWNLOADING: "Downloading",
    JobState.VERIFYING: "Checking SHA-256",
    JobState.PAUSED: "Paused",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELLED: "Cancelled",
}
PROGRESS_STEPS = 1000
# Rows the list asks room for before it scrolls.
ROWS_IN_VIEW = 3


def job_title(snapshot: JobSnapshot) -> str:
    name = snapshot.spec.files[0].filename.rsplit("/", 1)[-1]
    if snapshot.spec.sharded:
        name = f"{name} (+{len(snapshot.spec.files) - 1} more parts)"
    return f"{snapshot.spec.repo_id} · {name}"


def job_detail(snapshot: JobSnapshot) -> str:
    """State, bytes, speed and time left, or the error, in one line."""
    words = STATE_WORDS[snapshot.state]
    total = snapshot.total_bytes
    amount = format_bytes(snapshot.bytes_done)
    if total:
        amount += f" of {format_bytes(total)}"
    if snapshot.state is JobState.FAILED and snapshot.error:
        return f"{words}: {snapshot.error}"
    if snapshot.state is JobState.DONE:
        return f"{words} · {format_bytes(total or snapshot.bytes_done)}"
    if snapshot.state.active:
        speed = snapshot.bytes_per_second
        line = f"{words} · {amount}"
        if snapshot.note:
            # A retry or a wait: the speed from before it would read as a live one.
            return f"{line} · {snapshot.note}"
        if speed > 0:
            eta = format_duration(snapshot.eta_seconds)
            line += f" · {format_bytes(speed)}/s · {eta} left"
        return line
    return f"{words} · {amount}"


def file_lines(snapshot: JobSnapshot) -> str:
    """Each part's progress, for split models."""
    lines = []
    for index, (name, progress) in enumerate(snapshot.files, start=1):
        total = progress.total_bytes or 0
        state = "done" if progress.state is DownloadState.DONE else progress.state.value
        lines.append(
            f"part {index}/{len(snapshot.files)} {name.rsplit('/', 1)[-1]}: {state}, "
            f"{format_bytes(progress.bytes_done)} of {format_bytes(total)}"
        )
    return "\n".join(lines)


def percent_text(fraction: float | None) -> str:
    """The bars' text; one rounding for all of them, so they agree."""
    return f"{(fraction or 0.0):.0%}"


def _swap_buttons(buttons: list[tuple[QPushButton, bool]]) -> None:
    """Show and hide buttons that stand in for each other (Pause and Resume).

    A hidden button that had the keyboard focus hands it to the one shown in its
    place; otherwise Qt moves it to the next button, Cancel, and a second press of
    Space meant to resume would cancel the download and delete its data.
    """
    focused = next((button for button, _ in buttons if button.hasFocus()), None)
    for button, visible in buttons:
        button.setVisible(visible)
    if focused is not None and not focused.isVisible():
        heir = next((button for button, visible in buttons if visible), None)
        if heir is not None:
            heir.setFocus(Qt.FocusReason.OtherFocusReason)


class JobRow(QFrame):
    """One job: title, bar, detail line, buttons."""

    def __init__(self, job_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self.setObjectName(f"job_row_{job_id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, PROGRESS_STEPS)
        self.bar.setTextVisible(True)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.parts = QLabel()
        set_role(self.parts, "muted")
        self.parts.hide()
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove from this list (the file stays)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.title, 1)
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        layout.addWidget(self.parts)
        self._shown: JobSnapshot | None = None

    def show_snapshot(self, snapshot: JobSnapshot) -> None:
        if snapshot == self._shown:
            return
        self._shown = snapshot
        self.title.setText(job_title(snapshot))
        fraction = snapshot.fraction
        self.bar.setValue(int((fraction or 0.0) * PROGRESS_STEPS))
        self.bar.setFormat(percent_text(fraction))
        self.detail.setText(job_detail(snapshot))
        role = {JobState.FAILED: "error", JobState.DONE: "ok"}.get(snapshot.state, "muted")
        set_role(self.detail, role)
        if snapshot.spec.sharded:
            self.parts.setText(file_lines(snapshot))
            self.parts.show()
        state = snapshot.state
        self.resume_button.setText("Retry" if state is JobState.FAILED else "Resume")
        _swap_buttons(
            [
                (self.pause_button, state.active),
                (self.resume_button, state in (JobState.PAUSED, JobState.FAILED)),
                (self.cancel_button, not state.finished or state is JobState.FAILED),
                (self.remove_button, state.finished),
            ]
        )


class DownloadQueueView(QWidget):
    """All jobs and the overall progress.

    The rows scroll: every job adds one, and a list that only grew would push the
    window's minimum height past the screen and squeeze each row's buttons and text.

    Signals:
        pause_requested(int), resume_requested(int), cancel_requested(int),
        remove_requested(int): a job id.
    """

    pause_requested = Signal(int)
    resume_requested = Signal(int)
    cancel_requested = Signal(int)
    remove_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("download_queue")
        self.overall_label = QLabel("No downloads")
        self.overall_label.setObjectName("overall_label")
        self.overall_bar = QProgressBar()
        self.overall_bar.setObjectName("overall_bar")
        self.overall_bar.setRange(0, PROGRESS_STEPS)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setObjectName("clear_finished_button")
        self.clear_button.setToolTip(
            "Remove done and cancelled downloads from this list (downloaded files stay)"
        )
        self.clear_button.clicked.connect(self._clear_finished)
        self._header = header = QHBoxLayout()
        header.addWidget(QLabel("<b>Downloads</b>"))
        header.addWidget(self.overall_label, 1)
        header.addWidget(self.overall_bar, 1)
        header.addWidget(self.clear_button)
        self.overall_bar.setVisible(False)
        self.clear_button.setVisible(False)
        rows = QWidget()
        rows.setObjectName("download_rows")
        self._rows_layout = QVBoxLayout(rows)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.addStretch(1)
        self.rows_area = QScrollArea()
        self.rows_area.setObjectName("download_scroll")
        self.rows_area.setWidget(rows)
        self.rows_area.setWidgetResizable(True)
        self.rows_area.setFrameShape(QFrame.Shape.NoFrame)
        self.rows_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Its own minimum would count on top of the one this view computes from the
        # rows (``minimumSizeHint``) and squeeze the header: it takes what is left.
        self.rows_area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self._layout = layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.rows_area, 1)
        self.rows: dict[int, JobRow] = {}
        self._finished: list[int] = []

    def show_jobs(self, snapshots: list[JobSnapshot]) -> None:
        for snapshot in snapshots:
            row = self.rows.get(snapshot.job_id)
            if row is None:
                row = self._add_row(snapshot.job_id)
            row.show_snapshot(snapshot)
        wanted = {snapshot.job_id for snapshot in snapshots}
        for job_id in [job_id for job_id in self.rows if job_id not in wanted]:
            self.rows.pop(job_id).deleteLater()
        # Failed jobs stay: they keep their data and a Retry button.
        self._finished = [
            s.job_id for s in snapshots if s.state in (JobState.DONE, JobState.CANCELLED)
        ]
        self.clear_button.setVisible(bool(self._finished))
        self._show_overall(snapshots)

    def sizeHint(self) -> QSize:  # Qt override
        """Room for the header and the first ``ROWS_IN_VIEW`` rows."""
        return QSize(super().sizeHint().width(), self._height_for_rows(ROWS_IN_VIEW))

    def minimumSizeHint(self) -> QSize:  # Qt override
        # One whole row at least: the splitter gives later losses (a status line that
        # appears) to both panes, and a row cut in half reads as a broken list.
        return QSize(super().minimumSizeHint().width(), self._height_for_rows(1))

    def _height_for_rows(self, count: int) -> int:
        rows = list(self.rows.values())[:count]
        layout = self._layout
        margins = self.contentsMargins() + layout.contentsMargins()
        # The rows' area is in the layout even while empty: its spacing counts.
        height = margins.top() + self._header.sizeHint().height() + layout.spacing()
        height += sum(row.sizeHint().height() for row in rows) + margins.bottom()
        return height + self._rows_layout.spacing() * max(len(rows) - 1, 0)

    def _add_row(self, job_id: int) -> JobRow:
        row = JobRow(job_id)
        row.pause_button.clicked.connect(lambda: self.pause_requested.emit(job_id))
        row.resume_button.clicked.connect(lambda: self.resume_requested.emit(job_id))
        row.cancel_button.clicked.connect(lambda: self.cancel_requested.emit(job_id))
        row.remove_button.clicked.connect(lambda: self.remove_requested.emit(job_id))
        # Above the stretch that keeps the rows at the top.
        self._rows_layout.insertWidget(self._rows_layout.count() - 1, row)
        self.rows[job_id] = row
        return row

    def _clear_finished(self) -> None:
        for job_id in list(self._finished):
            self.remove_requested.emit(job_id)

    def _show_overall(self, snapshots: list[JobSnapshot]) -> None:
        # Only what is still to come: finished, failed and cancelled jobs in the sum
        # made "90%" of a total that no longer meant anything.
        pending = [s for s in snapshots if not s.state.finished]
        running = [s for s in pending if s.state.active]
        # An empty bar beside "No downloads" read as a download stuck at 0%.
        self.overall_bar.setVisible(bool(pending))
        if not pending:
            self.overall_label.setText("No downloads" if not snapshots else "Nothing downloading")
            self.overall_bar.setValue(0)
            return
        total = sum(s.total_bytes or 0 for s in pending)
        done = sum(s.bytes_done for s in pending)
        speed = sum(s.bytes_per_second for s in running if not s.note)
        paused = len(pending) - len(running)
        text = f"{len(running)} running"
        if paused:
            text += f" · {paused} paused"
        text += f" · {format_bytes(done)} of {format_bytes(total)}"
        if speed > 0 and total:
            text += f" · {format_bytes(speed)}/s · {format_duration((total - done) / speed)} left"
        self.overall_label.setText(text)
        fraction = min(done / total, 1.0) if total else None
        self.overall_bar.setValue(int((fraction or 0.0) * PROGRESS_STEPS))
        self.overall_bar.setFormat(percent_text(fraction))
