"""The four speculation graphs, drawn with pyqtgraph (MIT; Qt Charts is GPL-only).

Every plot creates its items once and later only calls ``setData`` on them, so a
redraw costs one pass over the series and no item churn. Auto-range follows the
data in steps (:class:`SteadyViewBox`), so most redraws leave the axes as they were.
Each takes its data from a :class:`SpeculationSeries`, which both one answer
(``AnswerTrace``) and a whole conversation (``ConversationTrace``) are.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget

from gui.chat.token_formats import OKABE_ITO
from gui.plots.plot_theme import theme_plot
from gui.plots.streaming_curve import StreamingCurve
from gui.theme import colors


class SpeculationSeries(Protocol):
    """What the plots read; AnswerTrace and ConversationTrace both provide it."""

    @property
    def acceptance(self) -> float: ...
    @property
    def acceptance_per_step(self) -> npt.NDArray[np.float64]: ...
    @property
    def accepted_length_histogram(self) -> npt.NDArray[np.int64]: ...
    @property
    def inter_token_latency_s(self) -> npt.NDArray[np.float64]: ...
    @property
    def draft_position_counts(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...


def _faded(colour: str, alpha: float) -> QColor:
    """``colour`` as it looks at ``alpha`` over the plots' background, but opaque.

    Nothing but the background lies under a fill or a faded line here, so the
    picture is the same, and Qt's raster engine fills opaque shapes without
    blending each pixel: the two bar plots paint a quarter faster.
    """
    ink, paper = QColor(colour), QColor(colors().surface)

    def mix(ink_part: float, paper_part: float) -> float:
        return alpha * ink_part + (1.0 - alpha) * paper_part

    return QColor.fromRgbF(
        mix(ink.redF(), paper.redF()),
        mix(ink.greenF(), paper.greenF()),
        mix(ink.blueF(), paper.blueF()),
    )


# Auto-range bounds snap outward to these multiples of a power of ten: at most a
# quarter of the plot is headroom, and a growing series moves the range about ten
# times per decade instead of at every redraw.
AUTO_RANGE_PADDING = 0.03  # fraction of the range left free on each side
_NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(value: float) -> float:
    """The smallest "nice" number (1, 1.2, 1.5, 2 ... times a power of ten) >= ``value``."""
    if value <= 0 or not math.isfinite(value):
        return value
    scale = 10.0 ** math.floor(math.log10(value))
    for step in _NICE_STEPS:
        if step * scale >= value * (1 - 1e-12):
            return step * scale
    return 10 * scale


def snapped_bounds(low: float, high: float) -> tuple[float, float]:
    """``[low, high]`` widened to steady values: the top to a nice number, the bottom
    down to a tenth of the span's power of ten (pyqtgraph pads the data's bounds by a
    pixel or two, which would otherwise move a bottom of 0 a little at every redraw)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return low, high
    grain = 10.0 ** math.floor(math.log10(high - low)) / 10
    top = nice_ceiling(high) if high > 0 else math.ceil(high / grain) * grain
    return math.floor(low / grain) * grain, top


class SteadyViewBox(pg.ViewBox):
    """A ViewBox whose auto-range snaps the data's bounds outward to nice numbers.

    pyqtgraph's auto-range fits the data exactly, so a series that grows by one
    point moves the range at every redraw, and each move makes the axes lay out
    and render their tick labels again: most of a plot's repaint cost. Snapped, the
    range (and the axes' cached picture) holds until the data passes the next
    step. Pan, zoom, the "A" button and "View all" work as before.
    """

    def childrenBounds(  # pyqtgraph override
        self,
        frac: tuple[float, float] | None = None,
        orthoRange: tuple[object, object] = (None, None),
        items: list[object] | None = None,
    ) -> list[list[float] | None]:
        bounds: list[list[float] | None] = super().childrenBounds(
            frac=frac, orthoRange=orthoRange, items=items
        )
        for axis, span in enumerate(bounds):
            if span is not None:
                bounds[axis] = list(snapped_bounds(span[0], span[1]))
        return bounds

    def settle(self) -> None:
        """Fit the range to new data now, not when the plot next paints.

        pyqtgraph fits it (and applies the new range to its items) inside the
        paint, and items whose transform changes there mark the view dirty again:
        each range change cost a second paint of the plot. Settled before the
        paint, the changes merge into the one that is due.
        """
        self.updateAutoRange()
        self.updateMatrix()

    def suggestPadding(self, axis: int) -> float:  # pyqtgraph override
        # pyqtgraph scales the padding with the plot's size in pixels, so a layout
        # change of a few pixels (an axis label growing a digit) moved the range too.
        return AUTO_RANGE_PADDING


# Vertical tick labels at least this far apart: on the panel's 60 px tall plots
# pyqtgraph's 0.2 steps of an acceptance axis drew six labels over each other.
MIN_LABEL_GAP_PX = 16


def _round_step(step: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above ``step``."""
    scale = 10.0 ** math.floor(math.log10(step))
    return next((m * scale for m in (1, 2, 5) if m * scale >= step * (1 - 1e-9)), 10 * scale)


class ReadableAxis(pg.AxisItem):
    """pyqtgraph's axis with ticks a reader can use: vertical labels that never overlap,
    and on counting axes (steps, tokens, positions, counts) whole numbers only (it
    ticked a histogram of two steps at -0.5, 0, 0.5)."""

    def __init__(self, orientation: str, whole_numbers: bool = False) -> None:
        super().__init__(orientation)
        self.whole_numbers = whole_numbers

    def tickSpacing(  # pyqtgraph override
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, float]]:
        levels: list[tuple[float, float]] = super().tickSpacing(minVal, maxVal, size)
        span = maxVal - minVal
        if span <= 0 or size <= 0 or not levels:
            return levels
        if self.orientation in ("left", "right"):
            levels = [
                (step, offset) for step, offset in levels if step / span * size >= MIN_LABEL_GAP_PX
            ]
            levels = levels or [(_round_step(MIN_LABEL_GAP_PX * span / size), 0.0)]
        if self.whole_numbers and math.floor(maxVal) >= math.ceil(minVal):
            whole = [(float(max(1, round(step))), 0.0) for step, _ in levels if step >= 1]
            levels = whole or [(1.0, 0.0)]
        return levels


class SpeculationPlot(pg.PlotWidget):
    """A small themed plot; subclasses add their items and fill them in ``update_from``."""

    # Axes that count (steps, tokens, positions): ticked at whole numbers only.
    whole_number_axes: tuple[str, ...] = ("bottom",)

    # Okabe-Ito hue for this plot's data, per theme (dark backgrounds need the lighter blue).
    light_hue = OKABE_ITO["blue"]
    dark_hue = OKABE_ITO["sky_blue"]

    def __init__(
        self, title: str, x_label: str, y_label: str, parent: QWidget | None = None
    ) -> None:
        self._view_box = SteadyViewBox()
        axes = {
            name: ReadableAxis(name, whole_numbers=name in self.whole_number_axes)
            for name in ("left", "bottom")
        }
        super().__init__(parent=parent, viewBox=self._view_box, axisItems=axes)
        self._title = title
        self._x_label = x_label
        self._y_label = y_label
        self.setMinimumSize(160, 120)
        item = self.getPlotItem()
        # No grid: translucent grid lines roughly double the cost of a repaint in
        # Qt's software rasteriser, and these plots repaint 8 times a second.
        # Pan and zoom stay on to look into a long answer's bursts; the corner "A"
        # button and the context menu's "View all" bring back the auto-range.
        # Long series are drawn as StreamingCurves, which draw only what is in view,
        # downsampled to peaks, so a redraw of 20,000 points stays cheap.
        # A redraw while streaming changes the data, rarely the axes (SteadyViewBox):
        # the axes are kept as pixmaps until their range or theme changes, and the
        # view neither saves the painter's state around each item (every pyqtgraph
        # item sets its own pen and brush) nor widens exposed areas for antialiasing
        # (nothing here is antialiased). Together a fifth less CPU per redraw.
        # No automatic SI prefix ("x1e3", "m") on the axis labels either: pyqtgraph
        # re-parses the label's HTML and lays the plot out again at every range
        # change for it, and counts and fractions read better without one.
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            axis.enableAutoSIPrefix(False)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.dark = False

    @property
    def title(self) -> str:
        return self._title

    def hue(self) -> str:
        return self.dark_hue if self.dark else self.light_hue

    def apply_theme(self, dark: bool) -> None:
        """Re-colour background, axes and data for the light or dark palette."""
        self.dark = dark
        theme_plot(self, self._title, {"bottom": self._x_label, "left": self._y_label})
        self.recolour()

    def recolour(self) -> None:
        """Give the data items this plot's hue (subclasses)."""

    def update_from(self, series: SpeculationSeries) -> None:
        raise NotImplementedError  # every concrete plot overrides it

    def settle_range(self) -> None:
        """After new data: fit the axes before the paint (SteadyViewBox.settle)."""
        self._view_box.settle()


ROLLING_STEPS = 16  # steps in the moving average drawn over the per-step acceptance


def moving_average(values: npt.NDArray[np.float64], window: int) -> npt.NDArray[np.float64]:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


class AcceptancePerStepPlot(SpeculationPlot):
    """Accepted / drafted for each verification step, its moving average and overall mean.

    Every item skips pyqtgraph's finite check (the series never hold NaN or inf):
    it costs a pass over the data at each redraw. Lines are drawn without
    antialiasing on purpose: per-step acceptance zigzags
    between 0 and 1, and QPainter takes ~150 ms to antialias 4,000 such segments
    (a long answer) against ~2 ms without.
    """

    light_hue = OKABE_ITO["bluish_green"]
    dark_hue = OKABE_ITO["bluish_green"]

    def __init__(self, parent: QWidget | None = None) -> None:
        # Short titles: two plots share a row of the side panel; the axes say the rest.
        super().__init__("Acceptance per step", "verification step", "accepted", parent)
        self.getPlotItem().setYRange(0, 1.05, padding=0)
        self.getPlotItem().setLimits(yMin=-0.05, yMax=1.1)
        self.curve = StreamingCurve(antialias=False)
        self.rolling = StreamingCurve(antialias=False)
        self.mean_line = pg.InfiniteLine(pos=0.0, angle=0, movable=False)
        # Where one answer ends and the next begins (conversation view only).
        self.boundaries = pg.PlotCurveItem(connect="pairs", antialias=False)
        self.addItem(self.curve)
        self.addItem(self.rolling)
        self.addItem(self.mean_line)
        self.addItem(self.boundaries)
        self._answer_starts: npt.NDArray[np.int64] | None = None
        self.set_answer_starts(np.zeros(0, dtype=np.int64))

    def recolour(self) -> None:
        self.curve.setPen(pg.mkPen(_faded(self.hue(), 0.45), width=1))
        self.rolling.setPen(pg.mkPen(self.hue(), width=2))
        self.mean_line.setPen(pg.mkPen(colors().muted, width=1, style=Qt.PenStyle.DashLine))
        self.boundaries.setPen(pg.mkPen(colors().border, width=1, style=Qt.PenStyle.DotLine))

    def update_from(self, series: SpeculationSeries) -> None:
        values = series.acceptance_per_step
        steps = np.arange(1, len(values) + 1)
        self.curve.set_series(steps, values)
        self.rolling.set_series(steps, moving_average(values, ROLLING_STEPS))
        self.mean_line.setValue(series.acceptance)

    def set_answer_starts(self, starts: npt.NDArray[np.int64]) -> None:
        # Called at every redraw; the boundaries only change when an answer is added.
        if self._answer_starts is not None and np.array_equal(starts, self._answer_starts):
            return
        self._answer_starts = starts.copy()
        later = starts[starts > 0] + 0.5  # between the last step of one answer and the next
        x = np.repeat(later, 2)
        y = np.tile([0.0, 1.05], len(later))
        self.boundaries.setData(x, y, skipFiniteCheck=True)


def show_bars(bars: pg.PlotCurveItem, edges: npt.ArrayLike, heights: npt.ArrayLike) -> None:
    """Bars as a filled step line over ``edges`` (one more than ``heights``). With
    no bars nothing is drawn: a lone edge would still give auto-range a point."""
    if len(np.asarray(heights)) == 0:
        bars.setData([], [], stepMode=None)
    else:
        bars.setData(edges, heights, stepMode="center", skipFiniteCheck=True)


class AcceptedLengthPlot(SpeculationPlot):
    """How many draft tokens each verification step accepted."""

    whole_number_axes = ("bottom", "left")  # accepted tokens, and steps

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Accepted length", "draft tokens accepted", "steps", parent)
        # Bars as a filled step line (show_bars): stepMode comes with the data, as
        # pyqtgraph checks it against the (still empty) data when it is set.
        self.bars = pg.PlotCurveItem(fillLevel=0, antialias=False)
        self.addItem(self.bars)

    def recolour(self) -> None:
        self.bars.setPen(pg.mkPen(self.hue(), width=1))
        self.bars.setBrush(pg.mkBrush(_faded(self.hue(), 0.55)))

    def update_from(self, series: SpeculationSeries) -> None:
        counts = series.accepted_length_histogram
        show_bars(self.bars, np.arange(len(counts) + 1) - 0.5, counts)


class InterTokenLatencyPlot(SpeculationPlot):
    """Wait before each token in order of arrival; a step's burst drops to zero.

    The x axis counts tokens rather than seconds: tokens of one step share one
    arrival time, and only a token axis shows how long each burst was.
    """

    light_hue = OKABE_ITO["orange"]
    dark_hue = OKABE_ITO["orange"]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Inter-token latency", "token (in order of arrival)", "ms", parent)
        self.curve = StreamingCurve(antialias=False)
        self.addItem(self.curve)

    def recolour(self) -> None:
        self.curve.setPen(pg.mkPen(self.hue(), width=1))

    def update_from(self, series: SpeculationSeries) -> None:
        latency_ms = series.inter_token_latency_s * 1000
        self.curve.set_series(np.arange(1, len(latency_ms) + 1), latency_ms)


class DraftPositionPlot(SpeculationPlot):
    """For draft token 1, 2, 3 …: accepted / proposed at that position."""

    light_hue = OKABE_ITO["reddish_purple"]
    dark_hue = OKABE_ITO["reddish_purple"]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Acceptance by position", "position in draft", "accepted", parent)
        self.getPlotItem().setYRange(0, 1.05, padding=0)
        self.bars = pg.PlotCurveItem(fillLevel=0, antialias=False)
        self.addItem(self.bars)
        self.counts: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = (
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )

    def recolour(self) -> None:
        self.bars.setPen(pg.mkPen(self.hue(), width=1))
        self.bars.setBrush(pg.mkBrush(_faded(self.hue(), 0.55)))

    def update_from(self, series: SpeculationSeries) -> None:
        accepted, proposed = series.draft_position_counts
        self.counts = (accepted, proposed)
        rate = np.zeros(len(proposed), dtype=np.float64)
        np.divide(accepted, proposed, out=rate, where=proposed > 0)
        show_bars(self.bars, np.arange(len(rate) + 1) + 0.5, rate)
        lines = [
            f"draft token {i + 1}: {a} of {p} accepted"
            for i, (a, p) in enumerate(zip(accepted, proposed, strict=True))
        ]
        self.setToolTip("\n".join(lines))
