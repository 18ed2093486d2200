"""Draft settings: every knob explained, changes emitted and saved per model pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from core.engine.config import DraftSource, GenerationSettings, ModelConfig
from core.settings import GENERATION_KNOBS, THREADS, LoadRequest, SettingsStore
from gui.panels.draft_settings_panel import DraftSettingsPanel
from gui.scrolling import scrolling


def model_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(b"\0" * size)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> SettingsStore:
    return SettingsStore(tmp_path / "settings.json")


@pytest.fixture
def pair(tmp_path: Path) -> LoadRequest:
    target = ModelConfig(model_file(tmp_path, "target.gguf", 100))
    draft = ModelConfig(model_file(tmp_path, "draft.gguf", 10))
    return LoadRequest(target, draft, DraftSource.MODEL)


def make_panel(qtbot: QtBot, settings: SettingsStore) -> DraftSettingsPanel:
    panel = DraftSettingsPanel(settings=settings)
    qtbot.addWidget(panel)
    return panel


def test_every_knob_has_a_one_sentence_tooltip(qtbot: QtBot, settings: SettingsStore) -> None:
    panel = make_panel(qtbot, settings)
    for knob in (*GENERATION_KNOBS, THREADS):
        tip = panel.spin_box(knob.key).toolTip()
        assert tip == knob.description
        assert tip.count(". ") == 0 and tip.endswith(".")
    assert panel.generation_settings() == GenerationSettings()


def test_changes_emit_settings_and_come_back_for_the_same_pair(
    qtbot: QtBot, settings: SettingsStore, pair: LoadRequest, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings)
    panel.set_pair(pair)
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.spin_box("draft_max").setValue(4)
    emitted = changed.args[0]
    assert isinstance(emitted, GenerationSettings) and emitted.drafting.n_max == 4
    panel.spin_box("p_min").setValue(0.75)
    panel.spin_box("temperature").setValue(0.0)
    panel.spin_box("top_k").setValue(12)
    panel.spin_box("seed").setValue(1234)
    panel.spin_box("n_predict").setValue(77)
    panel.spin_box("threads").setValue(1)
    tuned = panel.generation_settings()
    assert tuned.sampling.greedy and tuned.sampling.seed == 1234 and tuned.n_predict == 77

    # A new panel (as after a restart) on a new store reading the same file.
    again = make_panel(qtbot, SettingsStore(settings.path))
    with qtbot.waitSignal(again.settings_changed) as restored:
        again.set_pair(pair)
    assert restored.args[0] == tuned
    assert again.spin_box("draft_max").value() == 4
    assert again.spin_box("p_min").value() == pytest.approx(0.75)
    assert again.pair_settings().n_threads == 1

    # Another pair has its own settings: the defaults until tuned.
    other = LoadRequest(pair.target, None, DraftSource.NGRAM)
    again.set_pair(other)
    assert again.spin_box("draft_max").value() == GenerationSettings().drafting.n_max
    assert again.generation_settings().drafting.source is DraftSource.NGRAM


def test_draft_min_cannot_exceed_draft_max(
    qtbot: QtBot, settings: SettingsStore, pair: LoadRequest
) -> None:
    panel = make_panel(qtbot, settings)
    panel.set_pair(pair)
    panel.spin_box("draft_min").setValue(3)
    panel.spin_box("draft_max").setValue(2)
    drafting = panel.generation_settings().drafting
    assert drafting.n_max == 2 and drafting.n_min <= 2
    assert panel.spin_box("draft_min").maximum() == 2


def test_reset_to_defaults_is_saved(
    qtbot: QtBot, settings: SettingsStore, pair: LoadRequest
) -> None:
    panel = make_panel(qtbot, settings)
    panel.set_pair(pair)
    panel.spin_box("top_k").setValue(5)
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.reset_button.click()
    assert changed.args[0] == GenerationSettings()
    assert settings.generation_settings(pair.pair_key) == GenerationSettings()


def test_verification_and_adaptive_are_explained_applied_and_saved(
    qtbot: QtBot, settings: SettingsStore, pair: LoadRequest
) -> None:
    from core.engine.config import Verification
    from core.settings.generation import ADAPTIVE, VERIFICATION

    panel = make_panel(qtbot, settings)
    for widget, setting in (
        (panel.verification_combo, VERIFICATION),
        (panel.adaptive_check, ADAPTIVE),
    ):
        assert widget.toolTip() == setting.description
        assert widget.toolTip().count(". ") == 0 and widget.toolTip().endswith(".")
    assert panel.verification_combo.currentData() == "speculative"
    assert panel.adaptive_check.isChecked()

    panel.set_pair(pair)
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.verification_combo.setCurrentIndex(panel.verification_combo.findData("match"))
    assert changed.args[0].drafting.verification is Verification.MATCH
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.adaptive_check.setChecked(False)
    assert changed.args[0].drafting.adaptive is False
    assert changed.args[0].drafting.verification is Verification.MATCH
    # A numeric knob changed afterwards keeps the modes.
    panel.spin_box("draft_max").setValue(6)
    tuned = panel.generation_settings()
    assert tuned.drafting.n_max == 6 and not tuned.drafting.adaptive

    again = make_panel(qtbot, SettingsStore(settings.path))
    again.set_pair(pair)
    assert again.generation_settings() == tuned
    assert again.verification_combo.currentData() == "match"
    assert not again.adaptive_check.isChecked()
    # Another pair keeps the defaults; reset brings them back too.
    again.set_pair(LoadRequest(pair.target, None, DraftSource.NGRAM))
    assert again.verification_combo.currentData() == "speculative"
    assert again.adaptive_check.isChecked()
    panel.reset_button.click()
    assert panel.verification_combo.currentData() == "speculative"
    assert panel.adaptive_check.isChecked()


def _wheel_down(widget: QWidget) -> None:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        centre,
        widget.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_page_past_fields_until_one_is_chosen(
    qtbot: QtBot, settings: SettingsStore, pair: LoadRequest
) -> None:
    panel = make_panel(qtbot, settings)
    panel.set_pair(pair)
    area = scrolling(panel)
    qtbot.addWidget(area)
    area.resize(320, 200)  # shorter than the panel: the page scrolls
    area.show()
    qtbot.waitExposed(area)
    combo, spin = panel.verification_combo, panel.spin_box("draft_max")
    mode, draft_max = combo.currentIndex(), spin.value()
    _wheel_down(combo)
    _wheel_down(spin)
    assert (combo.currentIndex(), spin.value()) == (mode, draft_max)
    assert area.verticalScrollBar().value() > 0
    # Reached with Tab, it still lets the page scroll (the pointer may rest on it).
    area.activateWindow()
    spin.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(spin.hasFocus)
    _wheel_down(spin)
    assert spin.value() == draft_max
    # Clicked, a field takes the wheel as usual.
    spin.clearFocus()
    qtbot.mouseClick(spin.lineEdit(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(spin.hasFocus)
    _wheel_down(spin)
    assert spin.value() == draft_max - 1
