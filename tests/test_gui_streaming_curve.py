"""The speculation plots' long-series curve: thinned to the view, bounds of the whole."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pytestqt.qtbot import QtBot

from gui.plots.streaming_curve import StreamingCurve, peak_downsampled


def test_peak_downsampling_keeps_every_bucket_extreme_and_the_newest_points() -> None:
    x = np.arange(10, dtype=np.float64)
    y = np.array([0, 5, 1, 1, 9, 2, 3, 3, 3, 7], dtype=np.float64)
    shown_x, shown_y = peak_downsampled(x, y, 3)
    # Three points a bucket: (0, 5, 1), (1, 9, 2), (3, 3, 3), then the 10th as is.
    np.testing.assert_array_equal(shown_y, [0, 5, 1, 9, 3, 3, 7])
    np.testing.assert_array_equal(shown_x, [0, 0, 3, 3, 6, 6, 9])
    # A series that fits is drawn point by point.
    same_x, same_y = peak_downsampled(x, y, 10)
    assert same_x is x and same_y is y


def test_a_long_series_is_drawn_at_the_plots_width_and_bounded_by_all_of_it(
    qtbot: QtBot,
) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(320, 200)
    plot.show()
    curve = StreamingCurve()
    plot.addItem(curve)
    qtbot.waitExposed(plot)
    x = np.arange(1, 20_001, dtype=np.float64)
    y = np.zeros_like(x)
    y[12_345] = 80.0  # one burst in 20,000 points
    curve.set_series(x, y)
    width = int(plot.getPlotItem().vb.width())
    shown_x, shown_y = curve.getData()
    assert 0 < width < 320
    assert len(shown_x) <= 2 * width + 2 * len(x) // width
    assert shown_y.max() == 80.0  # the burst survives the thinning
    assert curve.dataBounds(0) == (1.0, 20_000.0)
    assert curve.dataBounds(1) == (0.0, 80.0)
    np.testing.assert_array_equal(curve.series()[1], y)

    # Zoomed in by hand: the points in view, every one of them.
    plot.getPlotItem().setXRange(12_300, 12_400, padding=0)
    shown_x, shown_y = curve.getData()
    assert shown_x[0] <= 12_300 and shown_x[-1] >= 12_400
    assert len(shown_x) <= 103
    np.testing.assert_array_equal(np.diff(shown_x), 1.0)
    assert shown_y.max() == 80.0
    # Back to the whole series ("A" button / View all).
    plot.getPlotItem().enableAutoRange()
    plot.getPlotItem().vb.updateAutoRange()
    left, right = plot.getPlotItem().vb.viewRange()[0]
    assert left <= 1.0 and right >= 20_000.0
    assert len(curve.getData()[0]) <= 2 * width + 2 * len(x) // width
    assert curve.getData()[0][-1] == 20_000.0


def test_an_empty_series_draws_nothing(qtbot: QtBot) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    curve = StreamingCurve()
    plot.addItem(curve)
    curve.set_series([1.0, 2.0], [0.5, 0.25])
    curve.set_series([], [])
    assert len(curve.getData()[0]) == 0
    assert curve.dataBounds(0) == (None, None)
