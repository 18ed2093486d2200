"""Sweep results as pictures: heatmaps over draft-max x p-min, and speed-up vs draft-max
(measured, and predicted from the pair's verification cost curve when it has one).

A heatmap shows one number per (draft-max, p-min) pair; where the grid also
varies draft-min or the draft source, each square shows the best of them for the
model draft (n-gram cells have no p-min and appear in the curve only). Squares
are labelled with their values, so the picture reads without a colour scale;
the colours say how a square compares with plain decoding (see ``colour_positions``).

The plots are pictures inside a scrolling page: no zoom or pan, and the mouse wheel
scrolls the page. They take the light or dark theme's colours (``apply_theme``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QWidget

from core.engine import DraftSource
from core.tune.prediction import Prediction
from core.tune.sweep import CellResult, SweepResult
from gui.chat.token_formats import OKABE_ITO
from gui.colour_contrast import contrast_ratio
from gui.plots.plot_theme import theme_plot
from gui.theme import DARK, LIGHT, colors

Metric = Callable[[SweepResult, CellResult], float]

METRICS: dict[str, tuple[str, Metric]] = {
    "tokens_per_second": ("Tokens/s", lambda _r, c: c.decode_tokens_per_second),
    "speedup": ("Speed-up over plain", lambda r, c: r.speedup(c)),
    "acceptance": ("Acceptance", lambda _r, c: c.acceptance),
}
_FORMATS = {"tokens_per_second": "{:.1f}", "speedup": "{:.2f}x", "acceptance": "{:.0%}"}

# How far from plain (1.00x) a square must be to take a scale's full colour, at least.
# Cells are measured against plain in the same run, yet two of them with the same
# settings still differ by a few percent (README, "Tuning"): scaled to the squares'
# own spread, 62.1 against 62.7 t/s read as opposite ends of the scale. With this
# floor such squares are two pale tints, and only a real gain or loss is saturated.
MIN_SPAN = 0.10

# Label ink: dark text on light squares, light on dark ones (by WCAG contrast).
DARK_INK = LIGHT.text
LIGHT_INK = "#ffffff"


def _grid_cells(result: SweepResult) -> list[CellResult]:
    return [
        cell
        for cell in result.cells
        if cell.drafting.source is DraftSource.MODEL and not cell.drafting.adaptive
    ]


def heatmap_axes(result: SweepResult) -> tuple[list[int], list[float]]:
    """The draft-max values (x) and p-min values (y) of the model cells."""
    cells = _grid_cells(result)
    return (
        sorted({c.drafting.n_max for c in cells}),
        sorted({c.drafting.p_min for c in cells}),
    )


def label_colour(square: QColor) -> QColor:
    """The ink of a label on ``square``: whichever of dark and light reads better."""
    dark, light = QColor(DARK_INK), QColor(LIGHT_INK)
    return dark if contrast_ratio(square, dark) >= contrast_ratio(square, light) else light


def colour_positions(
    metric: str, result: SweepResult, values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Where each value sits on its colour scale, 0 to 1 (NaN stays NaN).

    Speed-up and tokens/s share one diverging scale around plain decoding: 0.5 is
    as fast as plain, 1 the fastest square and 0 the slowest, each side scaled to
    its furthest square but to no less than ``MIN_SPAN``. Acceptance has a natural
    scale of its own, 0 to 100%.
    """
    if metric == "acceptance":
        return np.clip(values, 0.0, 1.0)
    ratios = values
    if metric == "tokens_per_second":
        base = result.baseline.decode_tokens_per_second
        ratios = values / base if base else np.full_like(values, 1.0)
    finite = ratios[np.isfinite(ratios)]
    above = max(MIN_SPAN, float(finite.max()) - 1.0) if finite.size else MIN_SPAN
    below = max(MIN_SPAN, 1.0 - float(finite.min())) if finite.size else MIN_SPAN
    with np.errstate(invalid="ignore"):
        positions = np.where(
            ratios >= 1.0, 0.5 + 0.5 * (ratios - 1.0) / above, 0.5 - 0.5 * (1.0 - ratios) / below
        )
    return np.clip(positions, 0.0, 1.0)


def colour_map(metric: str) -> pg.ColorMap:
    """The theme's scale for ``metric``: from a neutral square (the theme's own grey,
    so plain-like squares stay quiet in either theme) to Okabe-Ito hues, which stay
    apart for colour-blind readers. Faster is blue, slower orange (vermillion, the
    other obvious choice, takes neither dark nor light text at 4.5:1); acceptance
    is the chat's accepted-draft green."""
    neutral = colors().button_hover
    if metric == "acceptance":
        return pg.ColorMap([0.0, 1.0], [neutral, OKABE_ITO["bluish_green"]])
    return pg.ColorMap([0.0, 0.5, 1.0], [OKABE_ITO["orange"], neutral, OKABE_ITO["blue"]])


class _SweepPlot(pg.PlotWidget):
    """A still, themed plot: no zoom, pan, menu or corner button; the wheel scrolls the
    page around it; no automatic SI prefix ("x0.001") on the axes."""

    def __init__(
        self, title: str, x_label: str, y_label: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._title = title
        self._labels = {"bottom": x_label, "left": y_label}
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMinimumHeight(180)
        for name in self._labels:
            self.getAxis(name).enableAutoSIPrefix(False)
        self.dark = False
        self.apply_theme()

    def sizeHint(self) -> QSize:  # Qt override
        # A fixed wish. QGraphicsView's own hint follows its scene, which pyqtgraph
        # sizes to the view: inside the page's scroll area (which sizes the page by
        # its items' hints) any relayout, such as a theme switch, shrank the plots to
        # about half their height until the window was resized.
        return QSize(420, 360)

    def apply_theme(self) -> None:
        """Background, title, axes and data in the palette now in use."""
        self.dark = colors() is DARK
        theme_plot(self, self._title, self._labels)
        self.recolour()

    def recolour(self) -> None:
        """Re-colour the data items (subclasses)."""

    def wheelEvent(self, event: QWheelEvent) -> None:  # Qt override
        # Not to the scene: its axes take the wheel even with zoom off (pyqtgraph's
        # AxisItem.wheelEvent accepts it), so the page under the mouse would not scroll.
        event.ignore()


class SweepHeatmap(_SweepPlot):
    """One metric of a sweep over draft-max (x) and p-min (y).

    Signals:
        cell_clicked(object): the CellResult under a click (the best one at that square).
    """

    cell_clicked = Signal(object)

    def __init__(self, metric: str, parent: QWidget | None = None) -> None:
        # Not "metric": that is QPaintDevice.metric(), which painting calls.
        self.metric_key = metric
        title, self._value = METRICS[metric]
        self.image = pg.ImageItem()
        self.labels: dict[tuple[int, int], pg.TextItem] = {}
        self._squares: dict[tuple[int, int], CellResult] = {}
        self._result: SweepResult | None = None
        self.values = np.zeros((0, 0))
        self._rgba = np.zeros((0, 0, 4), dtype=np.ubyte)
        super().__init__(title, "draft-max", "p-min", parent)
        self.setObjectName(f"heatmap_{metric}")
        self.addItem(self.image)
        self.scene().sigMouseClicked.connect(self._on_click)

    @property
    def has_squares(self) -> bool:
        return bool(self._squares)

    def update_from(self, result: SweepResult) -> None:
        self._result = result
        xs, ys = heatmap_axes(result)
        values = np.full((len(xs), len(ys)), np.nan)
        self._squares = {}
        for cell in _grid_cells(result):
            i, j = xs.index(cell.drafting.n_max), ys.index(cell.drafting.p_min)
            value = self._value(result, cell)
            if np.isnan(values[i, j]) or value > values[i, j]:
                values[i, j] = value
                self._squares[(i, j)] = cell
        self.values = values
        for label in self.labels.values():
            self.removeItem(label)
        self.labels = {}
        if not values.size:
            self._rgba = np.zeros((0, 0, 4), dtype=np.ubyte)
            self.image.clear()
            return
        self.getAxis("bottom").setTicks([[(i, str(x)) for i, x in enumerate(xs)]])
        self.getAxis("left").setTicks([[(j, f"{y:g}") for j, y in enumerate(ys)]])
        self.setRange(xRange=(-0.5, len(xs) - 0.5), yRange=(-0.5, len(ys) - 0.5), padding=0)
        for i, j in self._squares:
            text = pg.TextItem(_FORMATS[self.metric_key].format(values[i, j]), anchor=(0.5, 0.5))
            text.setPos(i, j)
            self.addItem(text)
            self.labels[(i, j)] = text
        self.recolour()

    def square_colour(self, i: int, j: int) -> QColor | None:
        """The colour square (i, j) is painted in; None for a square not measured yet."""
        if (i, j) not in self._squares or not self._rgba.size:
            return None
        return QColor(*(int(channel) for channel in self._rgba[i, j]))

    def recolour(self) -> None:
        if self._result is None or not self.values.size:
            return
        positions = colour_positions(self.metric_key, self._result, self.values)
        rgba = colour_map(self.metric_key).map(
            np.nan_to_num(positions, nan=0.5).ravel(), mode="byte"
        )
        rgba = rgba.reshape((*positions.shape, 4)).astype(np.ubyte)
        # Squares still to come are left clear: the plot's background shows.
        rgba[np.isnan(positions)] = 0
        self._rgba = rgba
        # Levels given: without them pyqtgraph draws nothing for a one-row grid
        # (it guesses the image's format from its shape).
        self.image.setImage(rgba, autoLevels=False, levels=(0, 255))
        # After setImage: the rectangle is scaled from the image's size.
        self.image.setRect(-0.5, -0.5, *positions.shape)
        for (i, j), text in self.labels.items():
            square = self.square_colour(i, j)
            if square is not None:
                text.setColor(label_colour(square))

    def cell_at(self, x: float, y: float) -> CellResult | None:
        """The cell at a point in data coordinates (squares are centred on integers)."""
        return self._squares.get((round(x), round(y)))

    def _on_click(self, event: object) -> None:
        position = event.scenePos()  # type: ignore[attr-defined]
        if not self.plotItem.vb.sceneBoundingRect().contains(position):
            return
        point: QPointF = self.plotItem.vb.mapSceneToView(position)
        cell = self.cell_at(point.x(), point.y())
        if cell is not None:
            self.cell_clicked.emit(cell)


# Short: the legend is one row under a plot half the page wide.
_SERIES_NAMES = {DraftSource.MODEL: "draft model", DraftSource.NGRAM: "n-gram lookup"}


class SpeedupCurve(_SweepPlot):
    """Speed-up over plain against draft-max, one line per draft source (best over the
    other knobs), with the break-even line at 1, and dashed, the speed-up the cost
    curve predicts for every draft length of the model draft ("predicted").

    The legend sits under the plot, not on it, and lists only the lines drawn."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.break_even = pg.InfiniteLine(1.0, angle=0)
        self.curves = {
            source: pg.PlotDataItem([], [], symbol="o", name=name)
            for source, name in _SERIES_NAMES.items()
        }
        self.predicted = pg.PlotDataItem([], [], name="predicted")
        self.legend = pg.LegendItem(colCount=3, frame=False)
        super().__init__("Speed-up vs draft-max", "draft-max", "speed-up", parent)
        self.setObjectName("speedup_curve")
        self.addItem(self.break_even)
        for item in (*self.curves.values(), self.predicted):
            self.addItem(item)
        # Below the x axis (row 3 of the plot's layout): outside the data.
        self.plotItem.layout.addItem(self.legend, 4, 1)
        self.legend.setParentItem(self.plotItem)

    def _hues(self) -> dict[DraftSource, str]:
        # Dark backgrounds need the lighter blue, as the speculation plots do.
        model = OKABE_ITO["sky_blue"] if self.dark else OKABE_ITO["blue"]
        return {DraftSource.MODEL: model, DraftSource.NGRAM: OKABE_ITO["orange"]}

    def recolour(self) -> None:
        hues = self._hues()
        for source, curve in self.curves.items():
            curve.setPen(pg.mkPen(hues[source], width=2))
            curve.setSymbolBrush(hues[source])
            curve.setSymbolPen(pg.mkPen(hues[source]))
        self.predicted.setPen(
            pg.mkPen(hues[DraftSource.MODEL], width=1.5, style=Qt.PenStyle.DashLine)
        )
        self.break_even.setPen(pg.mkPen(colors().muted, style=Qt.PenStyle.DotLine))
        self.legend.setLabelTextColor(colors().text)
        self._refill_legend()

    def series(self, result: SweepResult, source: DraftSource) -> tuple[list[int], list[float]]:
        best: dict[int, float] = {}
        for cell in result.cells:
            if cell.drafting.source is source and not cell.drafting.adaptive:
                n_max = cell.drafting.n_max
                best[n_max] = max(best.get(n_max, 0.0), result.speedup(cell))
        xs = sorted(best)
        return xs, [best[x] for x in xs]

    def update_from(self, result: SweepResult, prediction: Prediction | None = None) -> None:
        measured: set[int] = set()
        for source, curve in self.curves.items():
            xs, ys = self.series(result, source)
            curve.setData(xs, ys)
            measured.update(xs)
        marked = set(measured)
        if prediction is None:
            self.predicted.setData([], [])
        else:
            # Up to the longest draft the sweep measured, so both read on one scale.
            longest = max((c.drafting.n_max for c in _grid_cells(result)), default=0)
            ks = [k for k in prediction.speedups if k <= max(longest, prediction.best[0])]
            self.predicted.setData(ks, [prediction.speedups[k] for k in ks])
            # Where the prediction runs past the grid, its best and its ends get ticks.
            if ks:
                marked.update((ks[0], ks[-1], prediction.best[0]))
        # The draft lengths tested are the ticks: 2, 4, 8, 16 rather than 0, 5, 10, 15.
        ticks = [(float(x), str(x)) for x in sorted(marked)]
        self.getAxis("bottom").setTicks([ticks] if ticks else None)
        self._refill_legend()

    def legend_names(self) -> list[str]:
        """The names the legend lists now."""
        return [label.text for _sample, label in self.legend.items]

    def _refill_legend(self) -> None:
        self.legend.clear()
        for item in (*self.curves.values(), self.predicted):
            x_data, _y = item.getData()
            if x_data is not None and len(x_data):
                self.legend.addItem(item, item.name())
