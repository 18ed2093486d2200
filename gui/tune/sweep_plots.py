"""Sweep results as pictures: heatmaps over draft-max x p-min, and speed-up vs draft-max
(measured, and predicted from the pair's verification cost curve when it has one).

A heatmap shows one number per (draft-max, p-min) pair; where the grid also
varies draft-min or the draft source, each square shows the best of them for the
model draft (n-gram cells have no p-min and appear in the curve only). Squares
are labelled with their values, so the picture reads without a colour scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QWidget

from core.engine import DraftSource
from core.tune.prediction import Prediction
from core.tune.sweep import CellResult, SweepResult
from gui.chat.token_formats import OKABE_ITO

Metric = Callable[[SweepResult, CellResult], float]

METRICS: dict[str, tuple[str, Metric]] = {
    "tokens_per_second": ("Tokens/s", lambda _r, c: c.decode_tokens_per_second),
    "speedup": ("Speed-up over plain", lambda r, c: r.speedup(c)),
    "acceptance": ("Acceptance", lambda _r, c: c.acceptance),
}
_FORMATS = {"tokens_per_second": "{:.1f}", "speedup": "{:.2f}x", "acceptance": "{:.0%}"}


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


class SweepHeatmap(pg.PlotWidget):
    """One metric of a sweep over draft-max (x) and p-min (y).

    Signals:
        cell_clicked(object): the CellResult under a click (the best one at that square).
    """

    cell_clicked = Signal(object)

    def __init__(self, metric: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Not "metric": that is QPaintDevice.metric(), which painting calls.
        self.metric_key = metric
        title, self._value = METRICS[metric]
        self.setObjectName(f"heatmap_{metric}")
        self.setTitle(title)
        self.setLabel("bottom", "draft-max")
        self.setLabel("left", "p-min")
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setMinimumHeight(160)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.addItem(self.image)
        self._labels: list[pg.TextItem] = []
        self._squares: dict[tuple[int, int], CellResult] = {}
        self.values = np.zeros((0, 0))
        self.scene().sigMouseClicked.connect(self._on_click)

    def update_from(self, result: SweepResult) -> None:
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
        for label in self._labels:
            self.removeItem(label)
        self._labels = []
        if not values.size:
            self.image.clear()
            return
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        # Missing squares (cells still to come) show as the lowest colour, unlabelled.
        self.image.setImage(np.nan_to_num(values, nan=low), levels=(low, high or 1.0))
        self.image.setRect(-0.5, -0.5, len(xs), len(ys))
        for i, j in self._squares:
            text = pg.TextItem(_FORMATS[self.metric_key].format(values[i, j]), anchor=(0.5, 0.5))
            text.setColor("w")
            text.setPos(i, j)
            self.addItem(text)
            self._labels.append(text)
        self.getAxis("bottom").setTicks([[(i, str(x)) for i, x in enumerate(xs)]])
        self.getAxis("left").setTicks([[(j, f"{y:g}") for j, y in enumerate(ys)]])
        self.setRange(xRange=(-0.5, len(xs) - 0.5), yRange=(-0.5, len(ys) - 0.5), padding=0)

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


class SpeedupCurve(pg.PlotWidget):
    """Speed-up over plain against draft-max, one line per draft source (best over the
    other knobs), with the break-even line at 1, and dashed, the speed-up the cost
    curve predicts for every draft length of the model draft."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speedup_curve")
        self.setTitle("Speed-up vs draft-max")
        self.setLabel("bottom", "draft-max")
        self.setLabel("left", "speed-up")
        self.setMinimumHeight(160)
        self.addItem(
            pg.InfiniteLine(1.0, angle=0, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
        )
        self.addLegend(offset=(-10, 10))
        colours = {DraftSource.MODEL: OKABE_ITO["blue"], DraftSource.NGRAM: OKABE_ITO["orange"]}
        self.curves = {
            source: self.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolBrush=colour,
                name=f"{source.value}, measured",
            )
            for source, colour in colours.items()
        }
        self.predicted = self.plot(
            [],
            [],
            pen=pg.mkPen(OKABE_ITO["blue"], width=1, style=Qt.PenStyle.DashLine),
            name="model, predicted",
        )

    def series(self, result: SweepResult, source: DraftSource) -> tuple[list[int], list[float]]:
        best: dict[int, float] = {}
        for cell in result.cells:
            if cell.drafting.source is source and not cell.drafting.adaptive:
                n_max = cell.drafting.n_max
                best[n_max] = max(best.get(n_max, 0.0), result.speedup(cell))
        xs = sorted(best)
        return xs, [best[x] for x in xs]

    def update_from(self, result: SweepResult, prediction: Prediction | None = None) -> None:
        for source, curve in self.curves.items():
            curve.setData(*self.series(result, source))
        if prediction is None:
            self.predicted.setData([], [])
            return
        # Up to the longest draft the sweep measured, so both read on one scale.
        longest = max((c.drafting.n_max for c in _grid_cells(result)), default=0)
        ks = [k for k in prediction.speedups if k <= max(longest, prediction.best[0])]
        self.predicted.setData(ks, [prediction.speedups[k] for k in ks])
