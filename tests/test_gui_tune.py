"""The Tune tab in the window, through the real engine worker on the tiny models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QScrollArea, QTabWidget, QWidget

from core.engine import DraftSettings, DraftSource
from core.engine.events import Provenance
from core.tune.prediction import Prediction
from core.tune.results_store import load_curve, load_result, save_result, saved_sweeps
from core.tune.sweep import CellResult, SweepGrid, SweepResult
from gui.chat.token_formats import token_formats
from gui.colour_contrast import contrast_ratio
from gui.theme import DARK, LIGHT, ThemeColors, apply_theme, build_palette, colors, is_dark
from gui.tune import sweep_page
from gui.tune.sweep_page import FILE_SET, SweepPage, describe_pair_change
from gui.tune.sweep_plots import METRICS, SpeedupCurve, SweepHeatmap
from tests.conftest import TinyModels
from tests.gui_window_support import (
    OFFSCREEN_NOISE,
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    tiny_request,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)

T = TypeVar("T")

pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]


def _loaded_window(qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels):  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)  # the panel's own settings
    request = tiny_request(tiny_models.target, tiny_models.draft)
    assert run(qloop, window.bridge.load(request)) is not None
    window.draft_settings.set_pair(request)
    window.draft_settings.spin_box("temperature").setValue(0.0)
    window.draft_settings.spin_box("n_predict").setValue(24)
    # A fixed length: the adaptive guard may stop drafting on a loaded machine.
    window.draft_settings.adaptive_check.setChecked(False)
    window.draft_settings.spin_box("draft_max").setValue(4)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    return window


def _set_up_sweep(
    page: SweepPage, draft_max: str, auto: bool, prompt_file: Path | None = None
) -> None:
    """A small grid (p-min 0) at 16 tokens an answer, on two prompts written to
    ``prompt_file`` when given (else the chosen built-in set)."""
    page.draft_max_edit.setText(draft_max)
    page.p_min_edit.setText("0")
    page.auto_check.setChecked(auto)
    page.tokens_spin.setValue(16)
    if prompt_file is not None:
        prompt_file.write_text("Tell me a story\n---\nthe cat and the dog\n")
        page.prompt_file = prompt_file
        page.set_combo.setCurrentIndex(page.set_combo.findData(FILE_SET))


def test_ab_shows_both_answers_coloured_with_speedup(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = _loaded_window(qtbot, qloop, window_files, tiny_models)
    page = window.tune_tab.ab_page
    # Empty prompt field: the message being typed in the chat is the prompt.
    window.input_box.setPlainText("Tell me a story")
    result = run(qloop, page.run_async())
    assert result is not None and result.identical  # greedy
    assert page.plain_pane.text() == result.plain.text
    assert page.speculative_pane.text() == result.speculative.text
    assert "Speed-up" in page.summary.text() and "identical" in page.summary.text()
    assert (result.speedup < 1) == page.warning.isVisibleTo(page)
    if result.speedup < 1:
        assert "tokens/s" in page.warning.text()
    # Accepted drafts carry the chat's accepted-draft format in the speculative pane.
    accepted = next(
        index
        for index, token in enumerate(result.speculative.tokens)
        if token.provenance is Provenance.DRAFT_ACCEPTED
    )
    offset = len("".join(t.text for t in result.speculative.tokens[:accepted]))
    cursor = page.speculative_pane.text_view.textCursor()
    cursor.setPosition(offset + 1)  # charFormat() is the character before
    expected = token_formats(is_dark()).token_format(Provenance.DRAFT_ACCEPTED)
    assert cursor.charFormat().background() == expected.background()
    close_window(qloop, window)


def test_tiny_sweep_fills_cells_saves_and_applies_a_cell_to_the_next_answer(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels, tmp_path: Path
) -> None:
    window = _loaded_window(qtbot, qloop, window_files, tiny_models)
    page = window.tune_tab.sweep_page
    _set_up_sweep(page, "2,5", auto=False, prompt_file=tmp_path / "prompts.txt")
    shown: list[tuple[int, int, int]] = []
    said: list[str] = []
    show = page.show_result

    def counting_show(result: SweepResult, pair: str | None = None) -> None:
        shown.append((len(result.cells), page.progress.value(), page.progress.maximum()))
        show(result, pair=pair)
        said.append(page.status.text())

    page.show_result = counting_show  # type: ignore[method-assign]
    result = run(qloop, page.run_async(), timeout=300)
    assert result is not None and not result.partial and len(result.cells) == 2
    # Every cell showed up after the first prompt (plain and two cells answered it)
    # and refined while the sweep ran.
    assert shown[0] == (2, 3, 6) and shown[1] == (2, 6, 6)
    assert said[0].startswith("Sweeping: every cell has answered 1 of 2 prompts of round 1")
    # The tiny pair's drafts rarely pay: the star goes only to a cell faster than plain.
    done = "Done. Best:" if result.winner() is not None else "Done: no draft setting beat"
    assert said[-1].startswith(done)
    assert page.progress.value() == page.progress.maximum() > 0
    assert page.table.rowCount() == 3 and page.table.item(0, 0).text() == "plain"
    heatmap = page.heatmaps["speedup"]
    assert heatmap.values.shape == (2, 1)
    assert heatmap.values[0, 0] == pytest.approx(result.speedup(result.cells[0]))

    key = window.draft_settings.pair_key()
    assert key is not None
    saved = load_result(key)
    assert saved is not None and len(saved.cells) == 2
    assert page.csv_button.isVisibleTo(page) and page.png_button.isVisibleTo(page)
    page.export_csv_to(tmp_path / "sweep.csv")
    assert (tmp_path / "sweep.csv").read_text().count("\n") == 4
    assert page.export_png_to(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 0

    # Click the draft-max 5 square of a heatmap: the chat's next answer uses it.
    heatmap.resize(300, 200)
    qloop.run_until_complete(asyncio.sleep(0.05))
    scene_point = heatmap.plotItem.vb.mapViewToScene(QPointF(1, 0))
    view_point = heatmap.mapFromScene(scene_point)
    QTest.mouseClick(
        heatmap.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(view_point.x(), view_point.y())
    )
    run(qloop, wait_until(lambda: window.generation_settings().drafting.n_max == 5))
    drafting = window.generation_settings().drafting
    assert not drafting.adaptive and drafting.p_min == 0.0
    assert window.draft_settings.spin_box("draft_max").value() == 5
    window.centre_tabs.setCurrentIndex(0)
    window.new_chat()
    run(qloop, window.controller.send_async("Hello there"))
    stats = window.chat_view.answers()[-1].stats
    assert stats is not None and stats.draft_max == 5
    # The stats show each step's draft length: here at most the applied 5.
    shown = window.speculation.values["draft_lengths"].text().split()
    assert shown and all(0 <= int(k) <= 5 for k in shown) and "5" in shown

    # A row of the table applies too; the plain row does nothing.
    page.apply_row(1)
    assert window.generation_settings().drafting.n_max == 2
    page.apply_row(0)
    assert window.generation_settings().drafting.n_max == 2
    close_window(qloop, window)


def test_cancelled_sweep_is_partial_and_saved_whole(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels
) -> None:
    window = _loaded_window(qtbot, qloop, window_files, tiny_models)
    page = window.tune_tab.sweep_page
    _set_up_sweep(page, "2,3,4", auto=False)

    async def cancelled_after_the_first_prompt() -> SweepResult | None:
        # One coroutine on the loop throughout: a task started in one run() and
        # awaited in another binds the engine client's queues to the wrong loop.
        task = asyncio.ensure_future(page.run_async())
        await wait_until(lambda: page.result is not None and len(page.result.cells) >= 1, 300)
        page.cancel()
        return await asyncio.wait_for(task, 120)

    result = run(qloop, cancelled_after_the_first_prompt(), timeout=420)
    assert result is not None and result.partial and len(result.cells) == 3
    assert result.prompts_measured is not None
    assert result.prompts_measured < result.prompt_count
    assert "Partial" in page.status.text() and "every cell is measured" in page.status.text()
    assert page.run_button.isEnabled() and not page.cancel_button.isEnabled()
    key = window.draft_settings.pair_key()
    assert key is not None
    entries = saved_sweeps(key)
    assert len(entries) == 1 and entries[0].partial
    # Written whole: no temporary file beside it (and no cost curve: the sweep was cut).
    assert [p.name for p in entries[0].path.parent.iterdir()] == [entries[0].path.name]
    saved = load_result(key)
    assert saved is not None and saved.partial and len(saved.cells) == len(result.cells)
    # Reloading shows the saved sweep.
    page.table.setRowCount(0)
    assert page.load_saved() is not None
    assert page.table.rowCount() == len(result.cells) + 1
    # A later sweep joins the history; any entry reloads, older ones can be deleted.
    saved.prompt_set, saved.partial = "later", False
    save_result(saved, key)
    page.refresh_history()
    history = page.saved
    assert history.combo.count() == 2
    assert "later" in history.combo.itemText(0)
    assert f"partial ({result.prompts_measured} of {result.prompt_count} prompts)" in (
        history.combo.itemText(1)
    )
    history.combo.setCurrentIndex(1)
    # The oldest chosen: nothing is older, so Delete older does nothing and says so.
    assert not history.delete_older_button.isEnabled()
    history.load_button.click()
    assert page.result is not None and page.result.partial
    history.combo.setCurrentIndex(0)
    assert history.delete_older_button.isEnabled()
    history.delete_older_button.click()
    assert [e.prompt_set for e in history.entries] == ["later"]
    assert page.status.text() == "Deleted 1 older sweep."
    history.delete_button.click()
    assert history.entries == [] and not history.delete_button.isEnabled()
    # An empty list says why it is empty instead of offering a Load that does nothing.
    assert not history.load_button.isEnabled()
    assert history.combo.currentText() == "" and "None saved" in history.combo.placeholderText()
    assert page.load_saved() is None and "No sweep saved" in page.status.text()
    close_window(qloop, window)


def test_the_adaptive_warm_up_shows_as_a_busy_bar_and_a_cancel_there_empties_it(
    qtbot, qloop, window_files: WindowFiles, tiny_models: TinyModels, tmp_path: Path
) -> None:
    window = _loaded_window(qtbot, qloop, window_files, tiny_models)
    page = window.tune_tab.sweep_page
    _set_up_sweep(page, "2", auto=True, prompt_file=tmp_path / "prompts.txt")
    said: list[tuple[str, int]] = []
    say = page._say

    def recording_say(text: str) -> None:
        say(text)
        said.append((text, page.progress.maximum()))

    page._say = recording_say  # type: ignore[method-assign]
    result = run(qloop, page.run_async(), timeout=300)
    assert result is not None and result.complete
    texts = [text for text, _ in said]
    first_warm_up = texts.index(
        "Warming up model auto on the set: answer 1 of at most 2, not measured (an adaptive "
        "length learns from the answers before it, so it starts each round as it would in a "
        "chat on this text)…"
    )
    # Busy while warming up; then the first round counts plain and two cells' answers.
    assert said[first_warm_up][1] == 0
    round_starts = next(
        index for index, text in enumerate(texts) if text.endswith("prompt by prompt…")
    )
    assert round_starts > first_warm_up and said[round_starts][1] == 6
    assert page.progress.value() == page.progress.maximum() == 6

    async def cancelled_in_the_warm_up() -> SweepResult | None:
        said.clear()
        task = asyncio.ensure_future(page.run_async())
        await wait_until(lambda: any(text.startswith("Warming up") for text, _ in said), 300)
        page.cancel()
        return await asyncio.wait_for(task, 120)

    cancelled = run(qloop, cancelled_in_the_warm_up(), timeout=420)
    assert cancelled is not None and cancelled.partial and not cancelled.cells
    assert page.progress.maximum() > 0 and page.progress.value() == 0
    assert "Partial: cancelled before every cell had answered" in page.status.text()
    close_window(qloop, window)


def test_without_a_pair_the_tab_says_what_to_do(qtbot, qloop, window_files: WindowFiles) -> None:
    window = open_window(qtbot, window_files)
    assert run(qloop, window.tune_tab.ab_page.run_async()) is None
    assert "Load a model pair" in window.tune_tab.ab_page.summary.text()
    assert run(qloop, window.tune_tab.sweep_page.run_async()) is None
    assert "Load a model pair" in window.tune_tab.sweep_page.status.text()
    close_window(qloop, window)


def test_calibrate_applies_the_fastest_setting_or_keeps_adaptive(
    qtbot,
    qloop,
    window_files: WindowFiles,
    tiny_models: TinyModels,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep_page, "CALIBRATION_GRID", SweepGrid(draft_max=(2, 3)))
    monkeypatch.setattr(sweep_page, "CALIBRATION_TOKENS", 16)
    window = _loaded_window(qtbot, qloop, window_files, tiny_models)
    page = window.tune_tab.sweep_page
    page.prompt_file = tmp_path / "prompts.txt"
    page.prompt_file.write_text("Tell me a story")
    page.set_combo.setCurrentIndex(page.set_combo.findData(FILE_SET))
    result = run(qloop, page.calibrate_async(), timeout=300)
    assert result is not None
    # The pair's cost curve was measured and saved, and predicts every length; a
    # predicted best length off the grid was measured too.
    key = window.draft_settings.pair_key()
    assert key is not None and load_curve(key) is not None
    prediction = page.prediction
    assert prediction is not None
    lengths = [cell.drafting.n_max for cell in result.cells]
    k, speedup = prediction.best
    assert lengths == ([2, 3, k] if k not in (2, 3) and speedup > 1 else [2, 3])
    predicted_x, _predicted_y = page.curve.predicted.getData()
    assert predicted_x is not None and k in list(predicted_x)
    assert f"predicted draft-max {k}" in page.status.text()
    best = result.best()
    assert best is not None
    drafting = window.generation_settings().drafting
    if result.speedup(best) > 1.0:
        assert drafting.n_max == best.drafting.n_max and not drafting.adaptive
        assert "chose" in page.status.text()
    else:
        assert drafting.adaptive and "adaptive" in page.status.text()
    # Saved with the pair: a fresh panel for the same pair shows it.
    saved = window.settings.pair_settings(window.draft_settings.pair_key() or "")
    assert saved.generation.drafting == window.draft_settings.pair_settings().generation.drafting
    close_window(qloop, window)


def test_a_status_that_wraps_does_not_move_the_sweep_table(
    qtbot, window_files: WindowFiles
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    page = window.tune_tab.sweep_page
    pages = window.tune_tab.findChild(QTabWidget, "tune_pages")
    pages.setCurrentIndex(1)  # Sweep
    qtbot.waitUntil(page.table.isVisible)
    page._say("Ready.")
    QTest.qWait(50)
    top = page.table.mapTo(window, QPoint(0, 0)).y()
    page._say(
        "Warming up model auto on the set: answer 1 of at most 4, not measured (an adaptive "
        "length learns from the answers before it, so it starts each round as it would in a "
        "chat on this text)…"
    )
    QTest.qWait(50)
    assert page.status.height() >= 2 * page.status.fontMetrics().lineSpacing()
    assert page.table.mapTo(window, QPoint(0, 0)).y() == top
    close_window(asyncio.get_event_loop(), window)


# ----- the sweep's plots and the pair they belong to, on made-up results ---------------


def _cell(n_max: int, speed: float, acceptance: float = 0.6, p_min: float = 0.0) -> CellResult:
    return CellResult(
        DraftSettings(n_max=n_max, p_min=p_min, adaptive=False),
        speeds=[speed],
        acceptances=[acceptance],
        mean_lengths=[1.5],
    )


def _result(*cells: CellResult, plain: float = 62.0) -> SweepResult:
    """A finished sweep of ``cells`` against plain decoding at ``plain`` t/s."""
    baseline = CellResult(DraftSettings(source=DraftSource.NONE), speeds=[plain])
    return SweepResult("chat", 16, 1, 0.0, baseline, cells=list(cells), planned_cells=len(cells))


def _shown_plot(qtbot, plot: QWidget) -> QImage:  # type: ignore[no-untyped-def]
    qtbot.addWidget(plot)
    plot.resize(420, 260)
    plot.show()
    qtbot.waitExposed(plot)
    return plot.grab().toImage()


def _square_pixel(heatmap: SweepHeatmap, image: QImage, i: int, j: int) -> QColor:
    """The colour drawn at square (i, j), away from its label in the middle."""
    scene = heatmap.plotItem.vb.mapViewToScene(QPointF(i - 0.35, j - 0.35))
    point = heatmap.mapFromScene(scene)
    ratio = image.devicePixelRatio()
    return image.pixelColor(int(point.x() * ratio), int(point.y() * ratio))


def _items(plot: pg.PlotWidget, kind: type[T]) -> list[T]:
    return [item for item in plot.scene().items() if isinstance(item, kind)]


def _legend_names(curve: SpeedupCurve) -> list[str]:
    return [label.text for legend in _items(curve, pg.LegendItem) for _, label in legend.items]


@contextmanager
def _palette(theme: ThemeColors) -> Iterator[None]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    original = app.palette()
    app.setPalette(build_palette(theme))
    try:
        yield
    finally:
        app.setPalette(original)


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_heatmap_labels_read_on_their_squares(qtbot, theme: ThemeColors) -> None:  # type: ignore[no-untyped-def]
    # Slower, as fast as plain, a little and much faster: every part of the scale.
    result = _result(_cell(2, 40.0, 0.2), _cell(4, 62.0, 0.5), _cell(8, 70.0), _cell(16, 93.0, 1))
    with _palette(theme):
        for metric in METRICS:
            heatmap = SweepHeatmap(metric)
            heatmap.update_from(result)
            image = _shown_plot(qtbot, heatmap)
            labels = _items(heatmap, pg.TextItem)
            assert len(labels) == 4
            for label in labels:
                i, j = round(label.pos().x()), round(label.pos().y())
                square = _square_pixel(heatmap, image, i, j)
                # WCAG AA for normal text: 4.5 (white on viridis' yellow was 1.1).
                assert contrast_ratio(label.color, square) >= 4.5, (metric, label.toPlainText())
            assert heatmap.backgroundBrush().color().name() == theme.surface


def test_heatmap_colours_close_speeds_alike_and_anchor_at_plain(qtbot) -> None:  # type: ignore[no-untyped-def]
    # 62.1 and 62.7 t/s against plain's 62.0: within noise, so nearly the same colour
    # (scaled to the squares' own range they were the two ends of it).
    close = _result(_cell(2, 62.1), _cell(4, 62.7))
    for metric in ("tokens_per_second", "speedup"):
        heatmap = SweepHeatmap(metric)
        heatmap.update_from(close)
        image = _shown_plot(qtbot, heatmap)
        first, second = (_square_pixel(heatmap, image, i, 0) for i in (0, 1))
        distance = max(
            abs(a - b) for a, b in zip(first.getRgb()[:3], second.getRgb()[:3], strict=True)
        )
        assert distance < 40, (metric, first.name(), second.name())
    # Anchored at plain: a square slower than plain and one faster take opposite
    # hues, and one as fast as plain sits between them whatever the others measured.
    spread = _result(_cell(2, 50.0), _cell(4, 62.0), _cell(8, 90.0))
    heatmap = SweepHeatmap("speedup")
    heatmap.update_from(spread)
    slower, even, faster = (heatmap.square_colour(i, 0) for i in range(3))
    assert slower is not None and even is not None and faster is not None
    assert slower.red() > slower.blue() and faster.blue() > faster.red()
    assert even.saturation() < 40
    assert heatmap.square_colour(5, 0) is None


def test_sweep_plot_axes_show_the_tested_values_without_a_scale_prefix(qtbot) -> None:  # type: ignore[no-untyped-def]
    result = _result(_cell(2, 60.0), _cell(4, 70.0))
    heatmap = SweepHeatmap("speedup")
    heatmap.update_from(result)
    curve = SpeedupCurve()
    curve.update_from(result)
    for plot in (heatmap, curve):
        _shown_plot(qtbot, plot)
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            # pyqtgraph labelled a p-min of 0 "p-min (x0.001)" with its SI prefix on.
            assert "(x" not in axis.labelString() and not axis.autoSIPrefix, name
    assert heatmap.getAxis("left")._tickLevels == [[(0, "0")]]
    assert heatmap.getAxis("bottom")._tickLevels == [[(0, "2"), (1, "4")]]
    assert curve.getAxis("bottom")._tickLevels == [[(2.0, "2"), (4.0, "4")]]


def test_the_curve_legend_lists_only_drawn_lines_and_stays_off_the_data(qtbot) -> None:  # type: ignore[no-untyped-def]
    curve = SpeedupCurve()
    result = _result(_cell(2, 60.0), _cell(4, 70.0), _cell(8, 75.0))
    curve.update_from(result)
    assert _legend_names(curve) == ["draft model"]
    prediction = Prediction(DraftSource.MODEL, 0.7, {1: 1.0, 2: 1.1, 4: 1.2, 8: 1.15})
    ngram = CellResult(
        DraftSettings(source=DraftSource.NGRAM, n_max=4, adaptive=False), speeds=[65.0]
    )
    curve.update_from(_result(*result.cells, ngram), prediction)
    assert _legend_names(curve) == ["draft model", "n-gram lookup", "predicted"]
    # The prediction runs past the grid here (1 … 8): its ends and best get ticks.
    assert curve.getAxis("bottom")._tickLevels == [[(x, f"{x:g}") for x in (1.0, 2.0, 4.0, 8.0)]]
    _shown_plot(qtbot, curve)
    view = curve.plotItem.vb.sceneBoundingRect()
    (legend,) = _items(curve, pg.LegendItem)
    assert legend.isVisible() and legend.sceneBoundingRect().height() > 0
    assert not legend.sceneBoundingRect().intersects(view)


def test_the_wheel_over_a_plot_scrolls_the_page_and_clicks_still_apply(
    qtbot, window_files: WindowFiles
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)
    window.resize(1300, 700)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    window.tune_tab.findChild(QTabWidget, "tune_pages").setCurrentIndex(1)  # Sweep
    page = window.tune_tab.sweep_page
    page.show_result(_result(_cell(2, 60.0), _cell(4, 70.0)))
    area = window.tune_tab.findChildren(QScrollArea)[1]
    bar = area.verticalScrollBar()
    qtbot.waitUntil(lambda: page.curve.isVisible() and bar.maximum() > 0)
    for plot in (page.heatmaps["speedup"], page.curve):
        for part in (plot.plotItem.vb, plot.getAxis("bottom")):
            # The plot's part in the middle of the page's view, room to scroll either way.
            middle = part.sceneBoundingRect().center()
            y = plot.mapTo(page, plot.mapFromScene(middle)).y() - area.viewport().height() // 2
            bar.setValue(max(1, min(y, bar.maximum() - 1)))
            QTest.qWait(20)
            point = plot.mapFromScene(middle)
            assert area.viewport().rect().contains(plot.mapTo(area.viewport(), point))
            before, ranges = bar.value(), plot.plotItem.vb.viewRange()
            # A real (spontaneous) wheel event: only those go on to the parents.
            QTest.wheelEvent(window.windowHandle(), plot.mapTo(window, point), QPoint(0, -240))
            QTest.qWait(20)
            assert bar.value() > before, (plot.objectName(), type(part).__name__)
            assert plot.plotItem.vb.viewRange() == ranges, plot.objectName()
    # A click on a square still applies it.
    heatmap = page.heatmaps["speedup"]
    area.ensureWidgetVisible(heatmap, 0, 0)
    QTest.qWait(20)
    applied: list[DraftSettings] = []
    page.apply_requested.connect(applied.append)
    point = heatmap.mapFromScene(heatmap.plotItem.vb.mapViewToScene(QPointF(1, 0)))
    QTest.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert [d.n_max for d in applied] == [4]
    close_window(asyncio.get_event_loop(), window)


def test_before_a_sweep_the_page_says_what_the_plots_will_show(
    qtbot, window_files: WindowFiles
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    window.tune_tab.findChild(QTabWidget, "tune_pages").setCurrentIndex(1)  # Sweep
    page = window.tune_tab.sweep_page
    qtbot.waitUntil(page.isVisible)
    QTest.qWait(50)  # the plots are made after the page's first paint
    # No empty axes (-500 ... 500 on black) before there is anything to draw.
    assert not page.plots.isVisible()
    assert page.plots_placeholder.isVisible()
    assert "after a sweep" in page.plots_placeholder.text().lower()
    page.show_result(_result(_cell(2, 60.0)))
    qtbot.waitUntil(page.plots.isVisible)
    assert not page.plots_placeholder.isVisible()
    # The plots follow the theme, also when it changes after they were made.
    with _palette(DARK):
        qtbot.waitUntil(lambda: page.curve.dark)
        for plot in (*page.heatmaps.values(), page.curve):
            assert plot.backgroundBrush().color().name() == DARK.surface
    qtbot.waitUntil(lambda: not page.curve.dark)
    assert page.curve.backgroundBrush().color().name() == colors().surface
    close_window(asyncio.get_event_loop(), window)


def test_the_plots_keep_their_size_through_a_theme_switch_and_the_table_fits_its_rows(
    qtbot, window_files: WindowFiles
) -> None:  # type: ignore[no-untyped-def]
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    palette, sheet = app.palette(), app.styleSheet()
    window = open_window(qtbot, window_files, settings=None)
    window.resize(1480, 900)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    window.tune_tab.findChild(QTabWidget, "tune_pages").setCurrentIndex(1)  # Sweep
    page = window.tune_tab.sweep_page
    page.show_result(_result(_cell(2, 60.0), _cell(4, 70.0), _cell(8, 65.0)))
    qtbot.waitUntil(page.plots.isVisible)
    QTest.qWait(100)
    plots = (*page.heatmaps.values(), page.curve)
    heights = [plot.height() for plot in plots]
    # Four rows and a header, not a tall box of empty rows above the plots.
    table = page.table
    rows = sum(table.rowHeight(row) for row in range(table.rowCount()))
    assert table.height() <= rows + table.horizontalHeader().height() + 4 * table.frameWidth() + 20
    assert min(heights) >= 300
    try:
        for mode in ("dark", "light"):
            # The style sheet's relayout had halved them until the next resize.
            apply_theme(app, mode)
            QTest.qWait(100)
            assert [plot.height() for plot in plots] == heights, mode
    finally:
        # Other tests share the QApplication: leave it as it was.
        apply_theme(app, "system")
        app.setPalette(palette)
        app.setStyleSheet(sheet)
    close_window(asyncio.get_event_loop(), window)


def test_a_sweep_of_another_pair_is_marked_and_not_applied(
    qtbot, window_files: WindowFiles, tiny_models: TinyModels
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)
    model_pair = tiny_request(tiny_models.target, tiny_models.draft)
    window.draft_settings.set_pair(model_pair)
    window.draft_settings.adaptive_check.setChecked(True)
    window.draft_settings.spin_box("draft_max").setValue(16)
    window.centre_tabs.setCurrentWidget(window.tune_tab)
    window.tune_tab.findChild(QTabWidget, "tune_pages").setCurrentIndex(1)  # Sweep
    page = window.tune_tab.sweep_page
    qtbot.waitUntil(page.isVisible)
    # The draft model pair's sweep is on screen; then the user drafts by n-gram lookup.
    model_key = model_pair.pair_key
    save_result(_result(_cell(8, 90.0)), model_key)
    page.refresh_history()
    assert page.load_saved() is not None and page.apply_button.isEnabled()
    ngram_pair = replace(model_pair, draft=None, draft_source=DraftSource.NGRAM)
    window.draft_settings.set_pair(ngram_pair)
    ngram_before = window.generation_settings().drafting
    # The window tells the page when the pair's settings change.
    assert not page.apply_button.isEnabled()
    assert page.pair_notice.isVisible()
    assert page.pair_notice.text().startswith(
        f"This sweep was measured with the draft model {tiny_models.draft.name}; "
        "the loaded pair uses n-gram lookup."
    )
    assert page.saved.combo.count() == 0  # the n-gram pair has no saved sweep
    # Neither a row nor a square writes the other pair's "draft max 8, adaptive off".
    page.table.setCurrentCell(1, 0)
    page._apply_selected()
    page.apply_row(1)
    page.heatmaps["speedup"].cell_clicked.emit(page.result.cells[0])
    assert window.generation_settings().drafting == ngram_before
    assert page.status.text().startswith("Not applied: the sweep shown was measured on another")
    # Back on the pair it measured, it applies again.
    window.draft_settings.set_pair(model_pair)
    assert not page.pair_notice.isVisible() and page.apply_button.isEnabled()
    assert page.saved.combo.count() == 1
    page.apply_row(1)
    drafting = window.generation_settings().drafting
    assert drafting.n_max == 8 and not drafting.adaptive
    close_window(asyncio.get_event_loop(), window)


def test_the_pair_notice_names_what_differs() -> None:
    model = "t.gguf:10|d.gguf:5"
    assert describe_pair_change(model, None).startswith(
        "This sweep was measured on t.gguf + d.gguf, and no pair is loaded."
    )
    assert describe_pair_change(model, "other.gguf:7|ngram").startswith(
        "This sweep was measured on t.gguf + d.gguf; the loaded pair is other.gguf with "
        "n-gram lookup."
    )
    assert describe_pair_change("t.gguf:10|ngram", "t.gguf:10|none").startswith(
        "This sweep was measured with n-gram lookup; the loaded pair uses no drafting."
    )


def test_a_sweep_where_drafting_loses_stars_nothing_and_says_plain_is_fastest(
    qtbot, window_files: WindowFiles
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, window_files, settings=None)
    page = window.tune_tab.sweep_page
    result = _result(_cell(2, 52.5), _cell(4, 48.0), plain=59.4)
    page.show_result(result)
    labels = [page.table.item(row, 0).text() for row in range(page.table.rowCount())]
    assert not any("★" in label for label in labels), labels
    assert page.status.text().startswith(
        "Done: no draft setting beat plain decoding on this pair; plain is fastest"
    )
    close_window(asyncio.get_event_loop(), window)
