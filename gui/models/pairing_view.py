"""The selected target's drafts (usable ones and the rest, with why) and whether
target, draft and both KV caches fit this machine at the chosen context."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.engine.config import DEFAULT_CONTEXT
from core.human_units import format_bytes
from core.library import DraftCandidate, ModelEntry, SystemMemory, check_pair_fit, find_local_drafts
from gui.theme import set_role

MAX_GPU_LAYERS = 999


class PairingView(QGroupBox):
    """Signals:
    use_pair_requested(object, object): target and draft ``Path`` for the picker.
    """

    use_pair_requested = Signal(object, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Drafts and memory", parent)
        self.setObjectName("pairing_view")
        self._target: ModelEntry | None = None
        self._system: SystemMemory | None = None
        self._candidates: list[DraftCandidate] = []
        self.target_label = QLabel("Select a model in the table to see its drafts.")
        self.target_label.setWordWrap(True)
        self.target_label.setMinimumHeight(self.target_label.fontMetrics().lineSpacing() * 2)
        self.drafts_list = QListWidget()
        self.drafts_list.setObjectName("pairing_drafts")
        # Reasons are sentences: wrap them rather than hide them past a scroll bar.
        self.drafts_list.setWordWrap(True)
        self.drafts_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.drafts_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.drafts_list.currentRowChanged.connect(self._refresh_fit)
        self.context_spin = QSpinBox()
        self.context_spin.setRange(256, 1 << 20)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setValue(DEFAULT_CONTEXT)
        self.context_spin.setSuffix(" tokens")
        self.target_gpu = self._gpu_spin()
        self.draft_gpu = self._gpu_spin()
        for spin in (self.context_spin, self.target_gpu, self.draft_gpu):
            spin.valueChanged.connect(self._refresh_fit)
        self.fit_label = QLabel()
        self.fit_label.setObjectName("pairing_fit")
        self.fit_label.setWordWrap(True)
        # A wrapped label in a splitter gets too little height otherwise; the verdict
        # is the point of this panel, so it keeps room for five lines.
        self.fit_label.setMinimumHeight(self.fit_label.fontMetrics().lineSpacing() * 5)
        self.fit_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.use_pair_button = QPushButton("Use this pair")
        self.use_pair_button.setObjectName("use_pair_button")
        self.use_pair_button.setToolTip("Put the target and the selected draft into the picker")
        self.use_pair_button.clicked.connect(self._use_pair)
        options = QFormLayout()
        options.addRow("Context", self.context_spin)
        gpu_row = QHBoxLayout()
        gpu_row.addWidget(QLabel("target"))
        gpu_row.addWidget(self.target_gpu)
        gpu_row.addWidget(QLabel("draft"))
        gpu_row.addWidget(self.draft_gpu)
        options.addRow("GPU layers", gpu_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.target_label)
        layout.addWidget(self.drafts_list, 1)
        layout.addLayout(options)
        layout.addWidget(self.fit_label)
        layout.addWidget(self.use_pair_button)
        self._refresh_fit()

    @staticmethod
    def _gpu_spin() -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(-1, MAX_GPU_LAYERS)
        spin.setSpecialValueText("all")
        spin.setValue(0)
        spin.setToolTip("Layers offloaded to the GPU; they take VRAM instead of RAM.")
        return spin

    def set_target(
        self, target: ModelEntry | None, entries: list[ModelEntry], system: SystemMemory | None
    ) -> None:
        self._target = target
        self._system = system
        self.drafts_list.clear()
        self._candidates = []
        if target is None or not target.usable:
            self.target_label.setText(
                "Select a usable model in the table to see its drafts."
                if target is None
                else f"{target.path.name} cannot be used: {target.error}"
            )
            self._refresh_fit()
            return
        pairing = find_local_drafts(target, entries)
        self._candidates = [*pairing.compatible, *pairing.incompatible]
        self.target_label.setText(
            f"<b>{target.path.name}</b> as target: {len(pairing.compatible)} usable "
            f"draft{'s' if len(pairing.compatible) != 1 else ''}, "
            f"{len(pairing.incompatible)} that cannot draft for it."
        )
        for candidate in self._candidates:
            mark = "✓" if candidate.compatible else "✗"
            item = QListWidgetItem(f"{mark} {candidate.entry.path.name}: {candidate.reason}")
            item.setToolTip(str(candidate.entry.path))
            if not candidate.compatible:
                item.setForeground(self.palette().placeholderText())
            self.drafts_list.addItem(item)
        if pairing.compatible:
            self.drafts_list.setCurrentRow(0)
        self._refresh_fit()

    def candidates(self) -> list[DraftCandidate]:
        return list(self._candidates)

    def select_draft(self, name: str) -> bool:
        for row, candidate in enumerate(self._candidates):
            if candidate.entry.path.name == name:
                self.drafts_list.setCurrentRow(row)
                return True
        return False

    def selected_draft(self) -> DraftCandidate | None:
        row = self.drafts_list.currentRow()
        return self._candidates[row] if 0 <= row < len(self._candidates) else None

    def fit_text(self) -> str:
        return self.fit_label.text()

    def _refresh_fit(self) -> None:
        target = self._target
        draft = self.selected_draft()
        usable_draft = draft if draft is not None and draft.compatible else None
        self.use_pair_button.setEnabled(target is not None and usable_draft is not None)
        if target is None or target.metadata is None or self._system is None:
            self.fit_label.clear()
            return
        fit = check_pair_fit(
            target.metadata,
            usable_draft.entry.metadata if usable_draft is not None else None,
            n_ctx=self.context_spin.value(),
            target_gpu_layers=self.target_gpu.value(),
            draft_gpu_layers=self.draft_gpu.value(),
            system=self._system,
        )
        what = "Target + draft" if usable_draft is not None else "Target alone"
        text = f"{what} with KV caches at {self.context_spin.value():,} tokens: {fit.summary()}."
        ram_total = format_bytes(self._system.total_ram_bytes)
        text += f" This machine has {ram_total} RAM in all."
        if fit.warning:
            text += f"\n{fit.warning}."
        self.fit_label.setText(text)
        set_role(self.fit_label, "ok" if fit.fits and not fit.warning else "warning")
        if not fit.fits:
            set_role(self.fit_label, "error")

    def _use_pair(self) -> None:
        draft = self.selected_draft()
        if self._target is not None and draft is not None and draft.compatible:
            self.use_pair_requested.emit(self._target.path, draft.entry.path)
