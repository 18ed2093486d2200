"""The live speculation panel, its plots and the readout under an answer."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from core.cli.readout import format_readout
from core.engine.events import EmittedToken, Provenance, StepEvent
from core.speculation.trace import AnswerTrace
from gui.chat.readout_widget import ReadoutWidget
from gui.panels.speculation_panel import REDRAW_INTERVAL_MS, SpeculationPanel
from gui.panels.steady_label import SteadyLabel
from gui.plots.speculation_plots import (
    MIN_LABEL_GAP_PX,
    AcceptedLengthPlot,
    DraftPositionPlot,
    moving_average,
    nice_ceiling,
    snapped_bounds,
)
from gui.theme import DARK, build_palette
from tests.test_speculation_trace import built, stats

ACC = Provenance.DRAFT_ACCEPTED
COR = Provenance.TARGET_CORRECTION


def speculative_step(n_accepted: int, n_drafted: int = 4) -> StepEvent:
    tokens = [EmittedToken(1, "a", ACC, 0.9) for _ in range(n_accepted)]
    tokens.append(EmittedToken(2, "b", COR if n_accepted < n_drafted else Provenance.TARGET_BONUS))
    return StepEvent(tuple(tokens), (), n_drafted, n_accepted, 5.0, 10.0)


def drawn(panel: SpeculationPanel) -> int:
    """How many steps the acceptance plot shows."""
    y = panel.acceptance_plot.curve.getData()[1]
    return 0 if y is None else len(y)


@pytest.fixture
def panel(qtbot: QtBot) -> SpeculationPanel:
    widget = SpeculationPanel()
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    return widget


class LayoutRequests(QObject):
    """Counts the layout requests a widget receives."""

    def __init__(self, watched: QObject) -> None:
        super().__init__()
        self.count = 0
        watched.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_a_steady_label_lays_out_again_only_when_a_value_needs_more_room(
    qtbot: QtBot,
) -> None:
    """The panel's numbers change five times a second while an answer streams; a
    label whose size may change would have the whole window laid out each time."""
    holder = QWidget()
    qtbot.addWidget(holder)
    label = SteadyLabel("—")
    QHBoxLayout(holder).addWidget(label)
    holder.show()
    qtbot.wait(20)
    requests = LayoutRequests(holder)

    label.setText("52.4 t/s")
    QApplication.processEvents()
    assert requests.count == 1  # wider than "—": the layout makes room once
    grown = label.size()
    for text in ("61.8 t/s", "9.5 t/s", "—", "48.0 t/s"):
        label.setText(text)
        QApplication.processEvents()
        assert label.text() == text
        assert label.fontMetrics().horizontalAdvance(text) <= label.width()
    assert requests.count == 1 and label.size() == grown  # the room is kept, no relayout
    label.setText("152.4 t/s")
    QApplication.processEvents()
    assert requests.count == 2 and label.width() > grown.width()


def test_the_panel_numbers_are_steady_labels(panel: SpeculationPanel) -> None:
    assert all(isinstance(value, SteadyLabel) for value in panel.values.values())


def test_panel_shows_a_finished_answer(panel: SpeculationPanel) -> None:
    trace = built()
    panel.show_answer(trace)
    assert panel.values["acceptance"].text() == "62.5%"
    assert panel.values["per_pass"].text() == "2.25"
    assert panel.values["ttft"].text() == "500 ms"
    assert panel.values["cumulative_rate"].text() == f"{9 / (1.8 - 0.47):.1f} t/s"
    # Finished: the "last second" is the answer's last second, (0.8, 1.8].
    assert panel.values["rolling_rate"].text() == "1.0 t/s"
    x, y = panel.acceptance_plot.curve.getData()
    np.testing.assert_allclose(y, [2 / 3, 1, 0])
    np.testing.assert_array_equal(x, [1, 2, 3])
    _, rolling = panel.acceptance_plot.rolling.getData()
    np.testing.assert_allclose(rolling, [2 / 3, 5 / 6, 5 / 9])
    _, heights = panel.length_plot.bars.getData()
    np.testing.assert_array_equal(heights, [1, 0, 1, 1])
    _, rates = panel.position_plot.bars.getData()
    np.testing.assert_allclose(rates, [2 / 3, 2 / 3, 1 / 2])
    assert "draft token 3: 1 of 2 accepted" in panel.position_plot.toolTip()
    _, latency = panel.latency_plot.curve.getData()
    assert len(latency) == 9
    panel.grab()  # every plot paints without a Qt warning


def test_panel_redraws_on_its_timer_while_streaming_and_stops(
    panel: SpeculationPanel, qtbot: QtBot
) -> None:
    trace = AnswerTrace()
    panel.show_answer(trace)
    curve = panel.acceptance_plot.curve
    panel.set_streaming(True)
    assert panel.redraw_timer.isActive()
    assert panel.redraw_timer.objectName() == "speculation_redraw_timer"
    assert 100 <= REDRAW_INTERVAL_MS <= 200  # 5-10 Hz

    # Steps arrive; nothing is drawn until the timer fires (never per token).
    trace.add_step(speculative_step(3), 0.2)
    trace.add_step(speculative_step(1), 0.25)
    assert drawn(panel) == 0
    qtbot.waitUntil(lambda: drawn(panel) == 2)
    np.testing.assert_allclose(curve.getData()[1], [0.75, 0.25])
    assert panel.values["acceptance"].text() == "50.0%"
    assert panel.values["rolling_rate"].text() != "—"

    # The plot items are updated in place, never re-created.
    items_before = list(panel.acceptance_plot.getPlotItem().items)
    trace.add_step(speculative_step(4), 0.3)
    qtbot.waitUntil(lambda: drawn(panel) == 3)
    assert list(panel.acceptance_plot.getPlotItem().items) == items_before
    assert panel.acceptance_plot.curve is curve

    panel.set_streaming(False)
    assert not panel.redraw_timer.isActive()
    trace.add_step(speculative_step(0), 0.4)
    qtbot.wait(3 * REDRAW_INTERVAL_MS)
    assert drawn(panel) == 3  # stopped: no more redraws on its own


def test_panel_conversation_scope(panel: SpeculationPanel) -> None:
    first = built()
    second = AnswerTrace()
    second.add_step(speculative_step(4), 0.2)
    second.add_step(speculative_step(2), 0.3)
    panel.show_conversation([first])
    panel.show_answer(second)
    _, y = panel.acceptance_plot.curve.getData()
    np.testing.assert_allclose(y, [1.0, 0.5])
    panel.set_scope(conversation=True)
    assert panel.showing_conversation
    _, y = panel.acceptance_plot.curve.getData()
    np.testing.assert_allclose(y, [2 / 3, 1, 0, 1.0, 0.5])
    boundary_x, _ = panel.acceptance_plot.boundaries.getData()
    np.testing.assert_allclose(boundary_x, [3.5, 3.5])
    _, heights = panel.length_plot.bars.getData()
    np.testing.assert_array_equal(heights, [1, 0, 2, 1, 1])
    assert panel.values["acceptance"].text() == f"{(5 + 6) / (8 + 8) * 100:.1f}%"
    assert panel.values["ttft"].text().endswith("(mean)")
    panel.set_scope(conversation=False)
    _, y = panel.acceptance_plot.curve.getData()
    np.testing.assert_allclose(y, [1.0, 0.5])
    panel.clear()
    assert panel.values["acceptance"].text() == "—"


def test_an_empty_answer_leaves_the_plots_empty_with_their_default_axes(
    panel: SpeculationPanel,
) -> None:
    panel.show_answer(built())
    panel.show_answer(AnswerTrace())
    for plot in panel.plots:
        for item in plot.getPlotItem().listDataItems():
            x, _ = item.getData()
            assert x is None or len(x) == 0, plot.title
    # Nothing drawn gives auto-range nothing to fit: the axes show 0 to 1, not
    # the range around a lone bar edge.
    left, right = panel.length_plot.getPlotItem().vb.viewRange()[0]
    assert left >= -0.1 and right <= 1.1


def test_panel_follows_a_dark_palette(panel: SpeculationPanel, qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    original = app.palette()
    try:
        app.setPalette(build_palette(DARK))
        qtbot.waitUntil(lambda: all(plot.dark for plot in panel.plots))
        background = panel.acceptance_plot.backgroundBrush().color()
        assert background.lightness() < 128
    finally:
        app.setPalette(original)
    qtbot.waitUntil(lambda: not any(plot.dark for plot in panel.plots))


def test_readout_copy_puts_the_text_on_the_clipboard(qtbot: QtBot) -> None:
    readout = ReadoutWidget()
    qtbot.addWidget(readout)
    assert not readout.copy_button.isEnabled()
    readout.set_stats(stats())
    assert readout.text() == format_readout(stats())
    assert "n_accept  = 5" in readout.label.text()
    qtbot.mouseClick(readout.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == format_readout(stats())
    readout.clear()
    assert readout.text() == ""
    assert not readout.copy_button.isEnabled()


def test_moving_average_uses_the_last_window_of_values() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(moving_average(values, 2), [1.0, 0.5, 0.5, 1.0, 0.5])
    np.testing.assert_allclose(moving_average(values, 16), np.cumsum(values) / np.arange(1, 6))
    assert len(moving_average(np.zeros(0), 4)) == 0


# Offscreen warns when a top-level window's size hints are set; harmless here.
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_plot_titles_fit_the_side_panel_at_its_default_width(qtbot: QtBot) -> None:
    widget = SpeculationPanel()
    qtbot.addWidget(widget)
    widget.resize(420, 600)  # the window's default width for the right-hand side
    widget.show()
    qtbot.waitExposed(widget)
    for plot in widget.plots:
        label = plot.getPlotItem().titleLabel
        assert label.text == plot.title and "…" not in plot.title
        title_width = label.item.boundingRect().width()
        assert 0 < title_width <= plot.width() - 8, (plot.title, title_width, plot.width())


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_auto_range_covers_the_data_and_holds_while_it_grows(
    panel: SpeculationPanel, qtbot: QtBot
) -> None:
    # A range that moved at every redraw made the axes render their labels again
    # each time; snapped to nice numbers it moves only when the data passes one.
    trace = AnswerTrace()
    panel.show_answer(trace)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.acceptance_plot.getPlotItem().getViewBox()

    def x_range_after(n_steps: int) -> list[float]:
        while trace.n_steps < n_steps:
            trace.add_step(speculative_step(trace.n_steps % 4), 0.1 * trace.n_steps)
        panel.redraw()
        QApplication.processEvents()
        return list(view.viewRange()[0])

    first = x_range_after(101)
    assert first[0] <= 1 and first[1] >= 101
    assert first[1] <= 1.25 * 101 * 1.1  # headroom stays modest
    assert x_range_after(110) == first
    grown = x_range_after(130)
    assert grown[1] > first[1] and grown[1] >= 130


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_a_redraw_fits_the_axes_before_the_paint(panel: SpeculationPanel, qtbot: QtBot) -> None:
    # Fitted inside the paint, a range change marked the plot dirty again and it
    # painted twice; the redraw fits every plot's range itself.
    trace = AnswerTrace()
    panel.show_answer(trace)
    panel.show()
    qtbot.waitExposed(panel)
    for n in range(40):
        trace.add_step(speculative_step(n % 4), 0.1 * n)
    panel.redraw()  # no event processing, so no paint, in between
    left, right = panel.acceptance_plot.getPlotItem().getViewBox().viewRange()[0]
    assert left <= 1 and right >= 40
    left, right = panel.latency_plot.getPlotItem().getViewBox().viewRange()[0]
    assert left <= 1 and right >= len(trace.tokens)


def test_nice_ceiling_and_snapped_bounds() -> None:
    assert [nice_ceiling(v) for v in (0.0, 1.0, 1.1, 7, 101, 0.031)] == pytest.approx(
        [0.0, 1.0, 1.2, 8, 120, 0.04]
    )
    low, high = snapped_bounds(-0.3, 101.0)
    assert low <= -0.3 and high >= 101.0
    assert snapped_bounds(-0.2, 101.0) == (low, high)  # a pixel's padding moves nothing


def test_counting_axes_tick_at_whole_numbers_only(qtbot) -> None:  # type: ignore[no-untyped-def]
    plot = AcceptedLengthPlot()
    qtbot.addWidget(plot)
    plot.resize(220, 160)
    plot.show()
    qtbot.waitExposed(plot)
    # Two steps: one accepted nothing, one accepted a token (the histogram spans -0.5..1.5).
    for name, (low, high) in (("bottom", (-0.5, 1.5)), ("left", (0.0, 1.0))):
        axis = plot.getPlotItem().getAxis(name)
        ticks = [value for _spacing, values in axis.tickValues(low, high, 200) for value in values]
        assert ticks and all(float(value).is_integer() for value in ticks), (name, ticks)


def test_vertical_labels_never_overlap_and_a_zoomed_count_axis_keeps_ticks(qtbot) -> None:  # type: ignore[no-untyped-def]
    plot = DraftPositionPlot()
    qtbot.addWidget(plot)
    left = plot.getPlotItem().getAxis("left")
    # An acceptance axis 0..1 on 60 px: pyqtgraph put a label every 0.2 (12 px).
    for spacing, values in left.tickValues(0.0, 1.0, 60):
        if len(values) > 1:
            assert spacing / 1.0 * 60 >= MIN_LABEL_GAP_PX
    # Zoomed between two whole numbers, the count axis still shows where it is.
    bottom = plot.getPlotItem().getAxis("bottom")
    assert [v for _s, values in bottom.tickValues(2.2, 2.8, 200) for v in values]
