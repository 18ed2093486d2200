"""The model picker: target, draft source and draft model, load options, Load/Unload.

The library is scanned in a background thread (it reads GGUF headers, and the
Hugging Face cache can hold many files); the panel only renders the result.
Drafts come from ``core.library.find_local_drafts``, the same vocabulary rule the
engine applies, so a pair the panel accepts is one the engine accepts. Drafts
that cannot work are still listed, with the reason, and refused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.demo_models import DemoPair, ensure_demo_pair
from core.engine.config import DEFAULT_CONTEXT, DraftSource, ModelConfig
from core.human_units import format_bytes, format_count
from core.library import (
    DraftCandidate,
    MemoryFit,
    ModelEntry,
    ModelLibrary,
    SystemMemory,
    add_user_folder,
    check_pair_fit,
    find_local_drafts,
    read_system_memory,
    user_folders,
)
from core.paths import same_path
from core.settings import LoadRequest, ModelOptions, SettingsStore, pair_key, shared_settings
from core.settings.store import PAIR_KEY_PREFIX
from core.worker.client import describe_offloaded_layers
from gui.panels.background import BackgroundRunner
from gui.panels.first_run import FirstRunOffer
from gui.panels.rpc_workers import RpcWorkersBox
from gui.sentence import as_sentence
from gui.theme import set_role

logger = logging.getLogger(__name__)

SOURCE_LABELS = {
    DraftSource.MODEL: "Draft model",
    DraftSource.NGRAM: "N-gram lookup (no draft model)",
    DraftSource.NONE: "None (plain decoding)",
}
SOURCE_TIPS = {
    DraftSource.MODEL: "A small model with the target's vocabulary proposes tokens.",
    DraftSource.NGRAM: "Tokens are proposed by matching the text so far against itself: "
    "free, and good at repeating code or quotes.",
    DraftSource.NONE: "The target decodes alone, one token per pass: the baseline.",
}
MAX_GPU_LAYERS = 999
STAGE_NAMES = {"target": "the target", "draft": "the draft"}


class PairInfoLike(Protocol):
    """What the panel reads from the worker's PairInfo (``core.worker.client``)."""

    @property
    def target_path(self) -> str: ...
    @property
    def draft_path(self) -> str | None: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def backend(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def target_gpu_layers(self) -> int: ...
    @property
    def draft_gpu_layers(self) -> int: ...


def describe_entry(entry: ModelEntry) -> str:
    """One line for a picker: file, parameters, quantisation, size.

    The file name leads: the name inside a GGUF is often a training-run label, and
    the quantisations of one model share it.
    """
    meta = entry.metadata
    if meta is None:
        return f"{entry.path.name} · unreadable"
    parts = [entry.path.stem]
    if meta.parameter_count:
        parts.append(f"{format_count(meta.parameter_count)} params")
    parts.append(meta.quantization or "?")
    parts.append(format_bytes(entry.file_size))
    return " · ".join(parts)


def entry_tooltip(entry: ModelEntry) -> str:
    lines = [str(entry.path), f"from the {entry.source.value}"]
    if entry.repo_id:
        lines.append(f"Hugging Face repo {entry.repo_id}")
    meta = entry.metadata
    if meta is not None:
        lines.append(f"architecture {meta.architecture}")
        if meta.context_length:
            lines.append(f"trained context {meta.context_length} tokens")
        lines.append("has a chat template" if meta.has_chat_template else "no chat template")
    elif entry.error:
        lines.append(entry.error)
    return "\n".join(lines)


def _effective_context(entry: ModelEntry, n_ctx: int) -> int:
    """The context the engine will create: 0 means the trained one, capped (see ModelConfig)."""
    if n_ctx > 0:
        return n_ctx
    trained = entry.metadata.context_length if entry.metadata else None
    return min(trained or DEFAULT_CONTEXT, DEFAULT_CONTEXT)


def _describes(request: LoadRequest, info: PairInfoLike) -> bool:
    """Whether ``request`` names the files the worker reports loaded."""
    if not same_path(request.target.path, Path(info.target_path)):
        return False
    if request.draft is None or info.draft_path is None:
        return request.draft is None and info.draft_path is None
    return same_path(request.draft.path, Path(info.draft_path))


class ModelPanel(QWidget):
    """Pick a target and its drafting, then ask to load it.

    The panel never loads anything itself: it emits what the user asked for and
    shows what the window reports back through the slots.

    Signals:
        load_requested(object): a LoadRequest for a new pair (target and draft).
        draft_change_requested(object): a LoadRequest with the loaded target and a
            new draft model or draft source; the target need not be reloaded.
        unload_requested(): unload the pair.
        cancel_load_requested(): abort the load in progress.
        active_pair_changed(object): the LoadRequest now loaded, or None after an
            unload; connect ``DraftSettingsPanel.set_pair`` to it.
        library_scanned(): the library was (re)scanned and the pickers refreshed.
        models_page_requested(): open the Models page (library, Hub, downloads).
    """

    load_requested = Signal(object)
    draft_change_requested = Signal(object)
    unload_requested = Signal()
    cancel_load_requested = Signal()
    active_pair_changed = Signal(object)
    library_scanned = Signal()
    models_page_requested = Signal()

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        settings: SettingsStore | None = None,
        library: ModelLibrary | None = None,
        demo_builder: Callable[[], DemoPair] = ensure_demo_pair,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("model_panel")
        self._settings = settings or shared_settings()
        self._library = library or ModelLibrary()
        self._scanner = BackgroundRunner("library_scanner", self)
        self._stop_scan = threading.Event()
        self._scan_generation = 0
        self._entries: list[ModelEntry] = []
        self._targets: list[ModelEntry] = []
        self._candidates: list[DraftCandidate] = []
        self._system: SystemMemory | None = None
        self._select_after_scan: LoadRequest | None = None
        # Models to put into the picker once the library knows them, in the order asked
        # ("Use this pair" asks for the target, then the draft).
        self._use_after_scan: list[tuple[Path, bool]] = []
        self._pending: LoadRequest | None = None
        self._loaded: LoadRequest | None = None
        self._loading = False

        self.first_run = FirstRunOffer(self, settings=self._settings, demo_builder=demo_builder)
        self.first_run.load_requested.connect(self.load_offered_pair)
        self._build_target_group()
        self.rpc_workers = RpcWorkersBox()
        self.rpc_workers.changed.connect(self._refresh)
        self._build_draft_group()
        self._build_status()
        self._build_library_row()

        layout = QVBoxLayout(self)
        layout.addWidget(self.first_run)
        layout.addWidget(self.target_group)
        layout.addWidget(self.rpc_workers)
        layout.addWidget(self.draft_group)
        layout.addWidget(self.memory_label)
        layout.addLayout(self._action_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.backend_label)
        layout.addStretch(1)
        layout.addWidget(self.library_label)
        layout.addLayout(self._library_row)

        # Threads are tuned in the draft settings but belong to the load: a change there
        # changes what Load would do.
        unsubscribe = self._settings.subscribe(self._on_setting_changed)
        self.destroyed.connect(unsubscribe)
        self._on_source_changed()
        self.rescan()

    # Building the widgets

    def _build_target_group(self) -> None:
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("target_combo")
        self.target_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.target_combo.setMinimumContentsLength(24)
        self.target_combo.setToolTip(
            "The model whose answers you get. Drafting never changes them."
        )
        self.target_details = QLabel()
        self.target_details.setWordWrap(True)
        set_role(self.target_details, "muted")
        self.target_gpu_layers = self._gpu_layers_spin()
        self.target_context = self._context_spin("model default")
        self.target_combo.currentIndexChanged.connect(self._on_target_changed)
        self.target_gpu_layers.valueChanged.connect(self._on_target_options_changed)
        self.target_context.valueChanged.connect(self._on_target_options_changed)

        self.target_group = QGroupBox("Target")
        form = QFormLayout(self.target_group)
        form.addRow(self.target_combo)
        form.addRow(self.target_details)
        form.addRow("GPU layers", self.target_gpu_layers)
        form.addRow("Context", self.target_context)

    def _build_draft_group(self) -> None:
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("draft_source_combo")
        for index, source in enumerate(DraftSource):
            self.source_combo.addItem(SOURCE_LABELS[source], source)
            self.source_combo.setItemData(index, SOURCE_TIPS[source], Qt.ItemDataRole.ToolTipRole)
        self.draft_combo = QComboBox()
        self.draft_combo.setObjectName("draft_combo")
        self.draft_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.draft_combo.setMinimumContentsLength(24)
        self.draft_verdict = QLabel()
        self.draft_verdict.setObjectName("draft_verdict")
        self.draft_verdict.setWordWrap(True)
        self.draft_verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.draft_gpu_layers = self._gpu_layers_spin()
        self.draft_context = self._context_spin("same as target")
        self.source_combo.currentIndexChanged.connect(self._on_source_changed)
        self.draft_combo.currentIndexChanged.connect(self._on_draft_changed)
        self.draft_gpu_layers.valueChanged.connect(self._on_draft_options_changed)
        self.draft_context.valueChanged.connect(self._on_draft_options_changed)

        self.draft_group = QGroupBox("Drafting")
        form = QFormLayout(self.draft_group)
        form.addRow("Source", self.source_combo)
        form.addRow("Draft model", self.draft_combo)
        form.addRow(self.draft_verdict)
        form.addRow("GPU layers", self.draft_gpu_layers)
        form.addRow("Context", self.draft_context)
        self._draft_form = form

    def _build_status(self) -> None:
        self.memory_label = QLabel()
        self.memory_label.setObjectName("memory_label")
        self.memory_label.setWordWrap(True)
        self.load_button = QPushButton("Load")
        self.load_button.setObjectName("load_button")
        set_role(self.load_button, "accent")
        self.unload_button = QPushButton("Unload")
        self.cancel_button = QPushButton("Cancel")
        self.load_button.clicked.connect(self.request_load)
        self.unload_button.clicked.connect(self._on_unload_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self._action_row = QHBoxLayout()
        self._action_row.addWidget(self.load_button)
        self._action_row.addWidget(self.unload_button)
        self._action_row.addWidget(self.cancel_button)
        self._action_row.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status_label = QLabel("No model loaded")
        self.status_label.setObjectName("status_label")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        set_role(self.status_label, "muted")
        self.backend_label = QLabel()
        self.backend_label.setObjectName("backend_label")
        self.backend_label.setWordWrap(True)
        self.backend_label.hide()

    def _build_library_row(self) -> None:
        self.library_label = QLabel()
        self.library_label.setWordWrap(True)
        set_role(self.library_label, "muted")
        self.add_folder_button = QPushButton("Add models folder…")
        self.add_folder_button.setToolTip("Add a folder with GGUF files; it is read in place.")
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Look again for GGUF files in every models folder.")
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.rescan_button.clicked.connect(self.rescan)
        self.browse_button = QPushButton("Models…")
        self.browse_button.setObjectName("browse_models_button")
        self.browse_button.setToolTip(
            "The Models page: every local model, Hugging Face search and downloads"
        )
        self.browse_button.clicked.connect(self.models_page_requested)
        self._library_row = QHBoxLayout()
        self._library_row.addWidget(self.browse_button)
        self._library_row.addWidget(self.add_folder_button)
        self._library_row.addWidget(self.rescan_button)
        self._library_row.addStretch(1)

    @staticmethod
    def _gpu_layers_spin() -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(-1, MAX_GPU_LAYERS)
        spin.setSpecialValueText("all")  # shown for the minimum, -1
        spin.setValue(ModelOptions().n_gpu_layers)
        spin.setKeyboardTracking(False)
        spin.setToolTip(
            "Layers to run on the GPU (all: every layer). More is faster while they fit in "
            "VRAM; ignored when llama.cpp has no GPU backend."
        )
        return spin

    @staticmethod
    def _context_spin(zero_text: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, 1 << 20)
        spin.setSingleStep(512)
        spin.setSuffix(" tokens")
        spin.setSpecialValueText(zero_text)  # shown for the minimum, 0
        spin.setKeyboardTracking(False)
        spin.setToolTip(
            "Tokens of conversation the model can see. Larger costs memory (the KV cache) "
            "and, at long lengths, speed."
        )
        return spin

    # The library

    def rescan(self) -> None:
        """Scan the library again in the background; ``library_scanned`` when done."""
        self._scan_generation += 1
        generation = self._scan_generation
        self.library_label.setText("Looking for models…")
        library, stop = self._library, self._stop_scan

        def scan() -> tuple[list[ModelEntry], SystemMemory]:
            return library.scan(stop), read_system_memory()

        self._scanner.submit(
            scan, lambda result: self._on_scanned(generation, *result), self._on_scan_failed
        )

    def add_models_folder(self, folder: Path) -> None:
        """Add ``folder`` to the library (saved for next time) and rescan."""
        if self._library.user_folders is None:
            add_user_folder(folder)
        elif folder.resolve() not in self._library.user_folders:
            # A library given fixed folders (tests, embedding) keeps them in memory only.
            self._library.user_folders.append(folder.resolve())
        self.rescan()

    def _choose_folder(self) -> None:
        # open() rather than exec(): a nested event loop would stall the qasync loop.
        dialog = QFileDialog(self, "Add a models folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.add_models_folder(Path(path)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _on_scan_failed(self, error: BaseException) -> None:
        logger.error("library scan failed: %s", error)
        self.library_label.setText(f"Could not scan the model folders: {error}")
        set_role(self.library_label, "error")

    def _on_scanned(self, generation: int, entries: list[ModelEntry], system: SystemMemory) -> None:
        if generation != self._scan_generation:
            return  # a newer scan is on its way
        current = self.selected_target()  # before the list it indexes is replaced
        self._entries = entries
        self._system = system
        self._targets = [entry for entry in entries if entry.usable]
        self._show_library_summary()
        self.first_run.set_library_has_models(bool(self._targets))
        wanted = self._select_after_scan
        self._select_after_scan = None
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        for index, entry in enumerate(self._targets):
            self.target_combo.addItem(describe_entry(entry), str(entry.path))
            self.target_combo.setItemData(index, entry_tooltip(entry), Qt.ItemDataRole.ToolTipRole)
        kept = current is not None and self._select_target_path(current.path)
        if not kept:
            self.target_combo.setCurrentIndex(0 if self._targets else -1)
        self.target_combo.blockSignals(False)
        if wanted is None or not self.select_request(wanted):
            self._on_target_changed()
        uses, self._use_after_scan = self._use_after_scan, []
        for path, as_draft in uses:
            self._use_model_now(path, as_draft)
        self.library_scanned.emit()

    def _show_library_summary(self) -> None:
        unreadable = [entry for entry in self._entries if not entry.usable]
        count = len(self._targets)
        text = f"{count} model{'s' if count != 1 else ''} in the library"
        if unreadable:
            text += f", {len(unreadable)} unreadable"
        if not self._entries:
            text = "No GGUF models found. Add a folder with models, or get the demo pair."
        self.library_label.setText(text)
        set_role(self.library_label, "muted")
        added = self._library.user_folders
        folders = [str(self._library.app_folder)]
        folders += [str(f) for f in (added if added is not None else user_folders())]
        tip = "Folders: " + ", ".join(folders) + f"\nHugging Face cache: {self._library.hf_cache}"
        for entry in unreadable:
            tip += f"\n{entry.path.name}: {entry.error}"
        self.library_label.setToolTip(tip)

    # Selection

    def selected_target(self) -> ModelEntry | None:
        index = self.target_combo.currentIndex()
        return self._targets[index] if 0 <= index < len(self._targets) else None

    def selected_draft(self) -> DraftCandidate | None:
        index = self.draft_combo.currentIndex()
        return self._candidates[index] if 0 <= index < len(self._candidates) else None

    def draft_source(self) -> DraftSource:
        return DraftSource(self.source_combo.currentData())

    def draft_candidates(self) -> list[DraftCandidate]:
        """The drafts listed for the current target: usable ones first, then the rest."""
        return list(self._candidates)

    def set_draft_source(self, source: DraftSource) -> None:
        self.source_combo.setCurrentIndex(self.source_combo.findData(DraftSource(source)))

    def select_target(self, path: Path) -> bool:
        """Select the target with this file; False if the library has no such model."""
        found = self._select_target_path(path)
        if found:
            self._on_target_changed()
        return found

    def _select_target_path(self, path: Path) -> bool:
        for index, entry in enumerate(self._targets):
            if same_path(entry.path, path):
                was_blocked = self.target_combo.blockSignals(True)
                self.target_combo.setCurrentIndex(index)
                self.target_combo.blockSignals(was_blocked)
                return True
        return False

    def select_draft(self, path: Path) -> bool:
        """Select this draft model (usable or not); False if it is not listed."""
        for index, candidate in enumerate(self._candidates):
            if same_path(candidate.entry.path, path):
                self.draft_combo.setCurrentIndex(index)
                self._on_draft_changed()
                return True
        return False

    def use_model(self, path: Path, as_draft: bool = False) -> None:
        """Put a library model into the picker as the target or as the draft model.

        A model the picker has not seen yet (just downloaded) is picked after a rescan.
        """
        if not self._use_model_now(path, as_draft):
            # Kept beside any earlier request: a target waiting for the scan must not
            # be forgotten when its draft is asked for next.
            self._use_after_scan.append((path, as_draft))
            self.rescan()

    def _use_model_now(self, path: Path, as_draft: bool) -> bool:
        if not as_draft:
            return self.select_target(path)
        if not any(same_path(c.entry.path, path) for c in self._candidates):
            return False
        self.set_draft_source(DraftSource.MODEL)
        return self.select_draft(path)

    def select_request(self, request: LoadRequest) -> bool:
        """Show ``request`` in the pickers (target, source, draft, load options)."""
        if not self.select_target(request.target.path):
            return False
        self.set_draft_source(request.draft_source)
        self._set_spins(self.target_gpu_layers, self.target_context, request.target)
        self.rpc_workers.set_workers(
            request.target.rpc_servers,
            request.target.tensor_split,
            request.draft.rpc_servers if request.draft is not None else (),
        )
        if request.draft is not None:
            self.select_draft(request.draft.path)
            self._set_spins(self.draft_gpu_layers, self.draft_context, request.draft)
        self._refresh()
        return True

    @staticmethod
    def _set_spins(gpu: QSpinBox, context: QSpinBox, config: ModelConfig | ModelOptions) -> None:
        for spin, value in ((gpu, config.n_gpu_layers), (context, config.n_ctx)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def _on_target_changed(self) -> None:
        target = self.selected_target()
        if target is None:
            self.target_details.setText("")
            self.target_details.hide()
            self._candidates = []
            self.draft_combo.clear()
            self._refresh()
            return
        meta = target.metadata
        details = f"{target.display_name} · {target.source.value}"
        if meta is not None and meta.context_length:
            details += f" · trained context {meta.context_length} tokens"
        self.target_details.setText(details)
        self.target_details.show()
        self.target_details.setToolTip(entry_tooltip(target))
        self._set_spins(
            self.target_gpu_layers, self.target_context, self._settings.model_options(target.path)
        )
        previous = self.selected_draft()
        pairing = find_local_drafts(target, self._entries)
        self._candidates = [*pairing.compatible, *pairing.incompatible]
        self.draft_combo.blockSignals(True)
        self.draft_combo.clear()
        for index, candidate in enumerate(self._candidates):
            self.draft_combo.addItem(self._candidate_text(candidate), str(candidate.entry.path))
            tip = f"{candidate.entry.path}\n{candidate.reason}"
            self.draft_combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self.draft_combo.setCurrentIndex(0 if self._candidates else -1)
        self.draft_combo.blockSignals(False)
        # The draft chosen before stays only if it can draft for this target: kept
        # across a switch to a model of another vocabulary (or after the old target
        # was deleted), it showed a red "cannot draft" beside a usable draft.
        if previous is not None and any(
            candidate.entry.path == previous.entry.path for candidate in pairing.compatible
        ):
            self.select_draft(previous.entry.path)
        self._on_draft_changed()

    @staticmethod
    def _candidate_text(candidate: DraftCandidate) -> str:
        # The mark and the words both say it, so colour is never the only cue.
        if candidate.compatible:
            return f"✓ {describe_entry(candidate.entry)} ({candidate.size_ratio:.0%} of target)"
        return f"✗ {candidate.entry.path.stem}: cannot draft"

    def _on_source_changed(self) -> None:
        uses_model = self.draft_source() is DraftSource.MODEL
        for field in (
            self.draft_combo,
            self.draft_verdict,
            self.draft_gpu_layers,
            self.draft_context,
        ):
            self._draft_form.setRowVisible(field, uses_model)
        self._refresh()

    def _on_draft_changed(self) -> None:
        candidate = self.selected_draft()
        if candidate is not None:
            self._set_spins(
                self.draft_gpu_layers,
                self.draft_context,
                self._settings.model_options(candidate.entry.path),
            )
        self._refresh()

    def _on_setting_changed(self, key: str, _value: object) -> None:
        if key.startswith(PAIR_KEY_PREFIX):
            self._update_actions()

    def _on_target_options_changed(self) -> None:
        target = self.selected_target()
        if target is not None:
            options = ModelOptions(self.target_gpu_layers.value(), self.target_context.value())
            self._settings.set_model_options(target.path, options)
        self._refresh()

    def _on_draft_options_changed(self) -> None:
        candidate = self.selected_draft()
        if candidate is not None:
            options = ModelOptions(self.draft_gpu_layers.value(), self.draft_context.value())
            self._settings.set_model_options(candidate.entry.path, options)
        self._refresh()

    # What the selection means

    def draft_verdict_text(self) -> str:
        """The vocabulary verdict shown for the selected draft."""
        return self.draft_verdict.text()

    def memory_text(self) -> str:
        """The memory-fit estimate shown for the selection."""
        return self.memory_label.text()

    def current_request(self) -> tuple[LoadRequest | None, str | None]:
        """The LoadRequest for the selection, or None and the reason it cannot be loaded."""
        target = self.selected_target()
        if target is None:
            return None, "Choose a target model (add a models folder if the list is empty)."
        source = self.draft_source()
        candidate = self.selected_draft() if source is DraftSource.MODEL else None
        if source is DraftSource.MODEL:
            if candidate is None:
                return None, (
                    "No draft model for this target. Add a smaller model with the same "
                    "vocabulary, or choose n-gram lookup or none as the draft source."
                )
            if not candidate.compatible:
                return None, (
                    f"{candidate.entry.path.name} cannot draft for "
                    f"{target.path.name}: {candidate.reason}"
                )
        workers_problem = self.rpc_workers.problem()
        if workers_problem is not None:
            return None, workers_problem
        draft_path = candidate.entry.path if candidate is not None else None
        threads = self._settings.pair_settings(pair_key(target.path, draft_path, source)).n_threads
        target_config = ModelConfig(
            target.path,
            n_gpu_layers=self.target_gpu_layers.value(),
            n_ctx=self.target_context.value(),
            n_threads=threads,
            rpc_servers=self.rpc_workers.endpoints(),
            tensor_split=self.rpc_workers.tensor_split(),
        )
        draft_config = None
        if candidate is not None:
            draft_config = ModelConfig(
                candidate.entry.path,
                n_gpu_layers=self.draft_gpu_layers.value(),
                n_ctx=self.draft_context.value(),
                n_threads=threads,
                rpc_servers=self.rpc_workers.draft_endpoints(),
            )
        return LoadRequest(target_config, draft_config, source), None

    def _memory_fit(self) -> MemoryFit | None:
        target = self.selected_target()
        if target is None or target.metadata is None or self._system is None:
            return None
        candidate = self.selected_draft() if self.draft_source() is DraftSource.MODEL else None
        if candidate is not None and (not candidate.compatible or candidate.entry.metadata is None):
            candidate = None
        # Without a GPU that answers, every layer runs from RAM whatever is asked.
        has_gpu = self._system.free_vram_bytes is not None
        target_ctx = _effective_context(target, self.target_context.value())
        return check_pair_fit(
            target.metadata,
            candidate.entry.metadata if candidate else None,
            n_ctx=target_ctx,
            draft_n_ctx=self.draft_context.value() or target_ctx,
            target_gpu_layers=self.target_gpu_layers.value() if has_gpu else 0,
            draft_gpu_layers=self.draft_gpu_layers.value() if has_gpu else 0,
            system=self._system,
        )

    def _refresh(self) -> None:
        self._show_verdict()
        self._show_memory()
        self._update_actions()

    def _show_verdict(self) -> None:
        candidate = self.selected_draft()
        if self.draft_source() is not DraftSource.MODEL or self.selected_target() is None:
            self.draft_verdict.setText("")
            self.draft_verdict.hide()
            return
        self.draft_verdict.show()
        if candidate is None:
            self.draft_verdict.setText(
                "No other model in the library. A draft needs the target's vocabulary "
                "and a smaller size."
            )
            set_role(self.draft_verdict, "warning")
        elif candidate.compatible:
            self.draft_verdict.setText(f"✓ Can draft: {candidate.reason}.")
            set_role(self.draft_verdict, "ok")
        else:
            self.draft_verdict.setText(f"✗ Cannot draft for this target: {candidate.reason}.")
            set_role(self.draft_verdict, "error")

    def _show_memory(self) -> None:
        fit = self._memory_fit()
        if fit is None:
            self.memory_label.setText("")
            return
        note = "" if fit.system.free_vram_bytes is not None else " No GPU found: all on the CPU."
        if self.draft_source() is DraftSource.MODEL and len(fit.models) == 1:
            note += " Target only: no usable draft chosen."
        if self.rpc_workers.problem() is None and self.rpc_workers.endpoints():
            note += (
                " The target's offloaded layers go to the RPC workers (Check shows their "
                "memory); this estimate still counts them here."
            )
        if fit.warning is None:
            self.memory_label.setText(f"Memory: fits, {fit.summary()}.{note}")
            set_role(self.memory_label, "ok")
        else:
            self.memory_label.setText(f"Memory: {fit.warning} ({fit.summary()}).{note}")
            set_role(self.memory_label, "error" if not fit.fits else "warning")
        lines = [
            f"{model.name}: weights {format_bytes(model.weights_bytes)}, KV cache "
            f"{format_bytes(model.kv_cache_bytes)} at {model.n_ctx} tokens, runtime "
            f"{format_bytes(model.overhead_bytes)}"
            for model in fit.models
        ]
        self.memory_label.setToolTip("An estimate from the files' metadata.\n" + "\n".join(lines))

    def _action(self, request: LoadRequest | None) -> str:
        """'load' (a new pair), 'draft' (same target, new drafting) or 'loaded' (nothing to do)."""
        loaded = self._loaded
        if request is None or loaded is None or request.target != loaded.target:
            return "load"
        same_draft = request.draft == loaded.draft and request.draft_source == loaded.draft_source
        return "loaded" if same_draft else "draft"

    def _update_actions(self) -> None:
        request, problem = self.current_request()
        action = self._action(request)
        self.load_button.setText(
            {"load": "Load", "draft": "Apply draft", "loaded": "Loaded"}[action]
        )
        self.load_button.setEnabled(not self._loading and problem is None and action != "loaded")
        self.load_button.setToolTip(problem or "")
        self.unload_button.setEnabled(not self._loading and self._loaded is not None)
        self.cancel_button.setVisible(self._loading)
        for widget in (
            self.target_group,
            self.rpc_workers,
            self.draft_group,
            self.add_folder_button,
        ):
            widget.setEnabled(not self._loading)

    # Intents

    def request_load(self) -> bool:
        """Ask for the selected pair (or only its new drafting, if the target is loaded).

        Returns False, and shows why, when the selection cannot be loaded, e.g. a
        draft whose vocabulary differs from the target's.
        """
        request, problem = self.current_request()
        if request is None:
            self.set_error(problem or "Nothing to load.")
            return False
        action = self._action(request)
        if action == "loaded":
            return False
        self._pending = request
        if action == "draft":
            self.draft_change_requested.emit(request)
        else:
            self.load_requested.emit(request)
        return True

    def load_offered_pair(self, request: LoadRequest) -> None:
        """Load a pair offered outside the pickers (last pair, demo pair)."""
        paths = [request.target.path] + ([request.draft.path] if request.draft else [])
        known = [entry.path for entry in self._entries]
        missing = [path for path in paths if not any(same_path(path, k) for k in known)]
        for folder in dict.fromkeys(path.parent for path in missing):
            # The demo pair lives in the app's cache: add it so it shows in the library.
            self.add_models_folder(folder)
        if missing:
            self._select_after_scan = request
        else:
            self.select_request(request)
        self._pending = request
        self.load_requested.emit(request)

    def _on_unload_clicked(self) -> None:
        self.unload_requested.emit()

    def _on_cancel_clicked(self) -> None:
        self.status_label.setText("Cancelling…")
        self.cancel_load_requested.emit()

    # Slots the window calls with the worker's progress

    def set_loading(self, stage: str, fraction: float) -> None:
        """Show load progress: ``stage`` is "target" or "draft", ``fraction`` 0..1."""
        self._loading = True
        self.progress.show()
        self.progress.setValue(round(max(0.0, min(1.0, fraction)) * 100))
        self.status_label.setText(f"Loading {STAGE_NAMES.get(stage, stage)}… {fraction:.0%}")
        set_role(self.status_label, "muted")
        self._update_actions()

    def set_loaded(self, info: PairInfoLike) -> None:
        """The pair is loaded; show it, its backend and device, and remember it."""
        self._loading = False
        self.progress.hide()
        # What was asked for, else what was loaded before (a reload after a crash), else
        # the saved last pair: whichever names these files.
        asked = (self._pending, self._loaded, self._settings.last_load_request())
        request = next((r for r in asked if r is not None and _describes(r, info)), None)
        if request is None:
            # Loaded by someone else and never seen here: describe what the worker says.
            draft_path = Path(info.draft_path) if info.draft_path else None
            source = DraftSource.MODEL if draft_path else DraftSource.NONE
            request = LoadRequest(
                ModelConfig(Path(info.target_path), info.target_gpu_layers, info.n_ctx),
                ModelConfig(draft_path, info.draft_gpu_layers) if draft_path else None,
                source,
            )
        self._pending = None
        self._loaded = request
        self.rpc_workers.set_loaded_pair(request)
        self._settings.set_last_load_request(request)
        self.first_run.refresh()
        self.first_run.hide()
        self.status_label.setText(f"Loaded {request.describe()}")
        set_role(self.status_label, "ok")
        layers = as_sentence(
            describe_offloaded_layers(
                info.target_gpu_layers, info.draft_gpu_layers if info.draft_path else None
            )
        )
        self.backend_label.setText(
            f"Running on {info.backend} · {info.device}\n{layers} · context {info.n_ctx} tokens"
        )
        self.backend_label.show()
        self._update_actions()
        self.active_pair_changed.emit(request)

    def set_unloaded(self) -> None:
        """Nothing is loaded any more (unloaded, cancelled, or the worker stopped)."""
        self._loading = False
        self._pending = None
        was_loaded = self._loaded is not None
        self._loaded = None
        self.rpc_workers.set_loaded_pair(None)
        self.progress.hide()
        self.status_label.setText("No model loaded")
        set_role(self.status_label, "muted")
        self.backend_label.hide()
        self.first_run.refresh()
        self.first_run.show()
        self._update_actions()
        if was_loaded:
            self.active_pair_changed.emit(None)

    def set_error(self, text: str) -> None:
        """Show why a load (or a request) failed; what was loaded stays loaded."""
        self._loading = False
        self._pending = None
        self.progress.hide()
        self.status_label.setText(as_sentence(text))
        set_role(self.status_label, "error")
        self.first_run.refresh()  # offer the demo or last pair again after a failed load
        self._update_actions()

    @property
    def loaded_request(self) -> LoadRequest | None:
        return self._loaded

    def shutdown(self) -> None:
        """Stop background work (the window is closing)."""
        self._stop_scan.set()
        self._scanner.close()
        self.rpc_workers.shutdown()
        self.first_run.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        self.shutdown()
        super().closeEvent(event)
