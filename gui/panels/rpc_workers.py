"""The model picker's RPC workers: where the target's layers may go besides this machine.

The user lists ``host:port`` workers (started with ``specchat-cli rpc-server``) and
an optional split; Check asks each one, off the GUI thread, whether it answers and
how much memory it lends (``core.rpc.probe``). The panel only renders the answers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from core.errors import ConfigError
from core.rpc.endpoints import parse_endpoints, parse_tensor_split
from core.rpc.probe import WorkerStatus, probe_workers
from core.settings import LoadRequest
from gui.panels.background import BackgroundRunner
from gui.theme import set_role


def describe_status(status: WorkerStatus) -> str:
    """One line per worker; the mark and the words both carry the verdict."""
    if status.report is not None:
        return f"✓ {status.endpoint}: {status.report.describe()}"
    if status.reachable:
        return (
            f"✓ {status.endpoint}: in use by the loaded pair (its memory is listed under "
            "“Running on” below)"
        )
    return f"✗ {status.error}"


class RpcWorkersBox(QGroupBox):
    """RPC workers for the target, their split, and a reachability check.

    Signals:
        changed(): the workers or the split were edited.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("RPC workers (optional)", parent)
        self.setObjectName("rpc_workers_box")
        self._runner = BackgroundRunner("rpc_worker_check", self)
        self._statuses: list[WorkerStatus] = []
        # Workers the loaded pair holds: they answer only on its connection.
        self._in_use: frozenset[str] = frozenset()
        self.workers_edit = QLineEdit()
        self.workers_edit.setObjectName("rpc_workers_edit")
        self.workers_edit.setPlaceholderText("host:port, host:port")
        self.workers_edit.setToolTip(
            "Machines running 'specchat-cli rpc-server' that hold part of the target's "
            "layers (the offloaded ones: GPU layers). The draft stays here unless asked. The RPC "
            "protocol has no authentication: use workers on a trusted network only."
        )
        self.split_edit = QLineEdit()
        self.split_edit.setObjectName("rpc_split_edit")
        self.split_edit.setPlaceholderText("by free memory")
        self.split_edit.setToolTip(
            "Proportions of the offloaded layers per device, e.g. 3,1: the workers in "
            "the order listed, then this machine's GPUs."
        )
        self.draft_on_workers = QCheckBox("Draft on the workers too")
        self.draft_on_workers.setObjectName("rpc_draft_check")
        self.draft_on_workers.setToolTip(
            "Put the draft model's offloaded layers on the workers as well, split by their "
            "free memory. Off, the draft runs on this machine, where a small draft is "
            "fastest: every drafted token would otherwise cross the network."
        )
        self.check_button = QPushButton("Check")
        self.check_button.setObjectName("rpc_check_button")
        self.check_button.setToolTip("Ask each worker whether it answers and what memory it has.")
        self.status_label = QLabel()
        self.status_label.setObjectName("rpc_status_label")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()

        row = QHBoxLayout()
        row.addWidget(self.workers_edit, 1)
        row.addWidget(self.check_button)
        form = QFormLayout(self)
        form.addRow("Workers", row)
        form.addRow("Split", self.split_edit)
        form.addRow(self.draft_on_workers)
        form.addRow(self.status_label)

        self.workers_edit.editingFinished.connect(self._on_edited)
        self.split_edit.editingFinished.connect(self._on_edited)
        self.draft_on_workers.toggled.connect(self.changed)
        self.check_button.clicked.connect(self.check)

    def endpoints(self) -> tuple[str, ...]:
        """The listed workers; raises ConfigError naming a malformed one."""
        return parse_endpoints(self.workers_edit.text())

    def tensor_split(self) -> tuple[float, ...]:
        return parse_tensor_split(self.split_edit.text())

    def problem(self) -> str | None:
        """Why the fields cannot be used as they are, or None."""
        try:
            self.endpoints()
            self.tensor_split()
        except ConfigError as exc:
            return str(exc)
        return None

    def draft_endpoints(self) -> tuple[str, ...]:
        """The workers the draft goes on: none unless asked for."""
        return self.endpoints() if self.draft_on_workers.isChecked() else ()

    def set_workers(
        self,
        endpoints: tuple[str, ...],
        split: tuple[float, ...],
        draft_endpoints: tuple[str, ...] = (),
    ) -> None:
        """Show a saved or requested setup, without announcing it as an edit."""
        blocked = self.draft_on_workers.blockSignals(True)
        self.draft_on_workers.setChecked(bool(draft_endpoints))
        self.draft_on_workers.blockSignals(blocked)
        text, split_text = ", ".join(endpoints), ",".join(f"{v:g}" for v in split)
        if text != self.workers_edit.text() or split_text != self.split_edit.text():
            self.workers_edit.setText(text)
            self.split_edit.setText(split_text)
            self._show([])

    def set_loaded_pair(self, request: LoadRequest | None) -> None:
        """The pair now loaded (None: none). Check asks its workers only whether they
        accept connections: a worker serves one client at a time, and the loaded
        model is that client."""
        if request is None:
            self._in_use = frozenset()
            return
        draft_workers = request.draft.rpc_servers if request.draft is not None else ()
        self._in_use = frozenset(request.target.rpc_servers + draft_workers)

    def statuses(self) -> list[WorkerStatus]:
        """The last check's outcome, one status per worker."""
        return list(self._statuses)

    def check(self) -> None:
        """Probe the listed workers in the background and show what each says."""
        try:
            endpoints = self.endpoints()
        except ConfigError as exc:
            self._show_text(f"✗ {exc}", "error")
            return
        if not endpoints:
            self._show_text("No workers listed: the target stays on this machine.", "muted")
            return
        self.check_button.setEnabled(False)
        self._show_text("Asking the workers…", "muted")
        in_use = self._in_use
        self._runner.submit(
            lambda: probe_workers(endpoints, in_use=in_use), self._on_checked, self._on_failed
        )

    def _on_checked(self, statuses: list[WorkerStatus]) -> None:
        self.check_button.setEnabled(True)
        self._show(statuses)

    def _on_failed(self, error: BaseException) -> None:
        self.check_button.setEnabled(True)
        self._show_text(f"✗ The check failed: {error}", "error")

    def _show(self, statuses: list[WorkerStatus]) -> None:
        self._statuses = statuses
        if not statuses:
            self.status_label.hide()
            return
        role = "ok" if all(status.reachable for status in statuses) else "error"
        self._show_text("\n".join(describe_status(status) for status in statuses), role)

    def _show_text(self, text: str, role: str) -> None:
        self.status_label.setText(text)
        set_role(self.status_label, role)
        self.status_label.show()

    def _on_edited(self) -> None:
        problem = self.problem()
        if problem:
            self._show_text(f"✗ {problem}", "error")
        else:
            self._show([])
        self.changed.emit()

    def shutdown(self) -> None:
        """Drop a check still running (the window is closing)."""
        self._runner.close()
