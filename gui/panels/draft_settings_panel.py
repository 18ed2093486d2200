"""Draft and sampling knobs for the next answer, saved per model pair.

The knobs, their ranges and their tooltips come from ``core.settings.generation``;
this panel only lays them out. A change applies to the next answer: nothing is
reloaded (threads are the exception, they apply at the next load).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.engine.config import DraftSettings, GenerationSettings
from core.errors import ConfigError
from core.settings import (
    DRAFTING_KNOBS,
    N_PREDICT,
    SAMPLING_KNOBS,
    THREADS,
    LoadRequest,
    PairSettings,
    Setting,
    SettingsStore,
    knob_value,
    shared_settings,
    with_knobs,
)
from core.settings.generation import (
    ADAPTIVE,
    DRAFT_MAX,
    DRAFT_MIN,
    SEED,
    VERIFICATION,
    with_drafting_mode,
)
from gui.theme import set_role

logger = logging.getLogger(__name__)

# Presentation only: decimals and step of each float knob.
_FLOAT_FORMAT: dict[str, tuple[int, float]] = {
    "p_min": (2, 0.05),
    "temperature": (2, 0.1),
    "top_p": (2, 0.05),
    "min_p": (2, 0.01),
    "repeat_penalty": (2, 0.05),
}
_SPECIAL_TEXT = {SEED.key: "random", "top_k": "off (all tokens)"}
_VERIFICATION_TEXT = {"speculative": "Speculative sampling", "match": "Sample and match"}

Knob = Setting[int] | Setting[float]
SpinBox = QSpinBox | QDoubleSpinBox


class DraftSettingsPanel(QWidget):
    """Draft-max, draft-min, p-min, verification, adaptive length, sampling, threads, length.

    Signals:
        settings_changed(object): the GenerationSettings for the next answer, after
            any knob changed (already saved for the current pair).
    """

    settings_changed = Signal(object)

    def __init__(
        self, parent: QWidget | None = None, *, settings: SettingsStore | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("draft_settings_panel")
        self._settings = settings or shared_settings()
        self._request: LoadRequest | None = None
        self._pair = PairSettings()
        self._spins: dict[str, SpinBox] = {}

        self.pair_label = QLabel()
        self.pair_label.setWordWrap(True)
        set_role(self.pair_label, "muted")
        drafting = self._group("Drafting", DRAFTING_KNOBS)
        self.verification_combo = QComboBox()
        self.verification_combo.setObjectName("verification_combo")
        for value in VERIFICATION.choices:
            self.verification_combo.addItem(_VERIFICATION_TEXT.get(value, value), value)
        self.verification_combo.setToolTip(VERIFICATION.description)
        self.verification_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.adaptive_check = QCheckBox(ADAPTIVE.label)
        self.adaptive_check.setObjectName("adaptive_check")
        self.adaptive_check.setToolTip(ADAPTIVE.description)
        self.adaptive_check.toggled.connect(self._on_mode_changed)
        drafting_form = drafting.layout()
        assert isinstance(drafting_form, QFormLayout)
        verification_label = QLabel(VERIFICATION.label)
        verification_label.setToolTip(VERIFICATION.description)
        drafting_form.addRow(verification_label, self.verification_combo)
        drafting_form.addRow(self.adaptive_check)
        sampling = self._group("Sampling", SAMPLING_KNOBS)
        performance = self._group("Answer and threads", (N_PREDICT, THREADS))
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Put every knob for this pair back to its default.")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.pair_label)
        layout.addWidget(drafting)
        layout.addWidget(sampling)
        layout.addWidget(performance)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._show_values()

    def _group(self, title: str, knobs: tuple[Knob, ...]) -> QGroupBox:
        group = QGroupBox(title)
        form = QFormLayout(group)
        for knob in knobs:
            spin = self._spin_for(knob)
            label = QLabel(knob.label)
            label.setToolTip(knob.description)
            form.addRow(label, spin)
        return group

    def _spin_for(self, knob: Knob) -> SpinBox:
        spin: SpinBox
        if isinstance(knob.default, float):
            spin = QDoubleSpinBox()
            decimals, step = _FLOAT_FORMAT.get(knob.key, (2, 0.05))
            spin.setDecimals(decimals)
            spin.setSingleStep(step)
            spin.setRange(float(knob.minimum or 0.0), float(knob.maximum or 1.0))
        else:
            spin = QSpinBox()
            spin.setRange(int(knob.minimum or 0), int(knob.maximum or 1 << 30))
        spin.setObjectName(f"{knob.key}_spin")
        spin.setToolTip(knob.description)
        if knob.key in _SPECIAL_TEXT:
            spin.setSpecialValueText(_SPECIAL_TEXT[knob.key])
        # Without this, typing "16" would apply "1" first, then "16".
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self._on_knob_changed)
        self._spins[knob.key] = spin
        return spin

    def spin_box(self, key: str) -> SpinBox:
        """The spin box of one knob, by its setting key (e.g. "draft_max")."""
        return self._spins[key]

    # The pair these settings belong to

    def set_pair(self, request: LoadRequest | None) -> None:
        """Show (and from now on save) the settings of this pair; None: the defaults."""
        self._request = request
        self._pair = self._settings.pair_settings(request.pair_key) if request else PairSettings()
        self._show_values()
        self.settings_changed.emit(self.generation_settings())

    def pair_settings(self) -> PairSettings:
        return self._pair

    def pair_key(self) -> str | None:
        """The key the loaded pair's settings (and its sweeps) are saved under."""
        return self._request.pair_key if self._request is not None else None

    def apply_drafting(self, drafting: DraftSettings) -> None:
        """Use a tuned cell's draft length settings for the next answers (and save them).

        The pair keeps its own draft source and verification; the adaptive switch,
        draft-max, draft-min and p-min come from ``drafting``.
        """
        current = self._pair.generation.drafting
        chosen = replace(
            current,
            n_max=drafting.n_max,
            n_min=drafting.n_min,
            p_min=drafting.p_min,
            adaptive=drafting.adaptive,
        )
        self._pair = replace(self._pair, generation=replace(self._pair.generation, drafting=chosen))
        self._show_values()
        self._save_and_emit()

    def generation_settings(self) -> GenerationSettings:
        """Settings for the next answer, with the draft source of the loaded pair."""
        generation = self._pair.generation
        if self._request is not None:
            drafting = replace(generation.drafting, source=self._request.draft_source)
            generation = replace(generation, drafting=drafting)
        return generation

    def reset_to_defaults(self) -> None:
        self._pair = PairSettings()
        self._show_values()
        self._save_and_emit()

    # Keeping widgets and settings in step

    def _show_values(self) -> None:
        if self._request is not None:
            self.pair_label.setText(f"Saved for {self._request.describe()}")
        else:
            self.pair_label.setText("No pair loaded: defaults, applied to the next pair.")
        values: dict[str, int | float] = {
            key: knob_value(self._pair.generation, key) for key in self._spins if key != THREADS.key
        }
        values[THREADS.key] = self._pair.n_threads
        for key, spin in self._spins.items():
            spin.blockSignals(True)
            if isinstance(spin, QDoubleSpinBox):
                spin.setValue(float(values[key]))
            else:
                spin.setValue(int(values[key]))
            spin.blockSignals(False)
        drafting = self._pair.generation.drafting
        self.verification_combo.blockSignals(True)
        self.verification_combo.setCurrentIndex(
            self.verification_combo.findData(drafting.verification.value)
        )
        self.verification_combo.blockSignals(False)
        self.adaptive_check.blockSignals(True)
        self.adaptive_check.setChecked(drafting.adaptive)
        self.adaptive_check.blockSignals(False)
        self._limit_draft_min()

    def _limit_draft_min(self) -> None:
        # draft-min above draft-max is invalid; bounding the spin box makes it impossible.
        draft_min = self._spins[DRAFT_MIN.key]
        draft_min.blockSignals(True)
        draft_min.setMaximum(int(self._spins[DRAFT_MAX.key].value()))
        draft_min.blockSignals(False)

    def _on_knob_changed(self) -> None:
        self._limit_draft_min()
        values = {key: spin.value() for key, spin in self._spins.items() if key != THREADS.key}
        try:
            generation = with_knobs(self._pair.generation, values)
            threads = THREADS.validate(int(self._spins[THREADS.key].value()))
        except ConfigError as exc:
            # The spin boxes' ranges should rule this out; keep the last good settings.
            logger.warning("ignoring invalid draft settings: %s", exc)
            self._show_values()
            return
        self._pair = PairSettings(generation, threads)
        self._save_and_emit()

    def _on_mode_changed(self) -> None:
        try:
            generation = with_drafting_mode(
                self._pair.generation,
                verification=str(self.verification_combo.currentData()),
                adaptive=self.adaptive_check.isChecked(),
            )
        except ConfigError as exc:
            logger.warning("ignoring invalid drafting mode: %s", exc)
            self._show_values()
            return
        self._pair = replace(self._pair, generation=generation)
        self._save_and_emit()

    def _save_and_emit(self) -> None:
        if self._request is not None:
            self._settings.set_pair_settings(self._request.pair_key, self._pair)
        self.settings_changed.emit(self.generation_settings())
