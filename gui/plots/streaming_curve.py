"""A curve fed straight from a growing series, thinned to what the plot can show.

pyqtgraph's ``PlotDataItem`` wraps a ``PlotCurveItem`` in a general pipeline (a
scatter child, mapped and display copies of the data, log and FFT modes, finite
checks) that runs at every ``setData``. The speculation panel calls ``setData``
five times a second on every plot while an answer streams, and on 2 CPU cores
every millisecond the window spends is taken from llama.cpp: fed directly, the
panel's redraws took a fifth less CPU (4.6 to 3.6 ms each, offscreen).

What the panel needs from that pipeline is kept here: a long series (a 20,000-token
answer's latencies) is drawn as per-pixel minimum and maximum of the points in
view ("peak" downsampling, so bursts stay visible), recomputed when the view is
panned, zoomed or resized, while auto-range still sees the whole series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg


def peak_downsampled(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], buckets: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``x``, ``y`` as at most ``buckets`` pairs of (minimum, maximum) of consecutive
    points, each pair at its bucket's first x; short series come back as they are."""
    size = len(y)
    per_bucket = size // max(buckets, 1)
    if per_bucket < 2:
        return x, y
    whole = size // per_bucket * per_bucket
    blocks = y[:whole].reshape(-1, per_bucket)
    peaks = np.column_stack([blocks.min(axis=1), blocks.max(axis=1)]).ravel()
    starts = np.repeat(x[:whole:per_bucket], 2)
    # The last partial bucket is drawn point by point, so the newest data shows.
    return np.concatenate([starts, x[whole:]]), np.concatenate([peaks, y[whole:]])


class StreamingCurve(pg.PlotCurveItem):
    """A line over a series with increasing x, given whole at each redraw
    (``set_series``); ``series()`` returns it, ``getData()`` what is drawn."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._x: npt.NDArray[np.float64] = np.zeros(0)
        self._y: npt.NDArray[np.float64] = np.zeros(0)
        self._bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._shown: tuple[int, int, int] | None = None  # first, end, pixel width

    def set_series(self, x: npt.ArrayLike, y: npt.ArrayLike) -> None:
        self._x = np.asarray(x, dtype=np.float64)
        self._y = np.asarray(y, dtype=np.float64)
        self._bounds = (
            ((float(self._x[0]), float(self._x[-1])), (float(self._y.min()), float(self._y.max())))
            if len(self._x)
            else None
        )
        self._shown = None
        self._show()

    def series(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return self._x, self._y

    def viewRangeChanged(self) -> None:  # pyqtgraph hook: pan, zoom, auto-range
        super().viewRangeChanged()
        self._show()

    def viewTransformChanged(self) -> None:  # pyqtgraph hook: resize
        super().viewTransformChanged()
        self._show()

    def dataBounds(  # pyqtgraph override: auto-range sees the whole series
        self, ax: int, frac: float = 1.0, orthoRange: object = None
    ) -> tuple[float | None, float | None]:
        if self._bounds is None:
            return (None, None)
        return self._bounds[ax]

    def _show(self) -> None:
        """Draw the part of the series in view, thinned to the view's width."""
        first, end, width = 0, len(self._x), 0
        view = self.getViewBox()
        if view is not None and end:
            width = int(view.width())
            # While x follows the data (streaming), the view will show all of it,
            # though its range may not have caught up with the newest points yet.
            # Panned or zoomed by hand, only what is in view is drawn, with one
            # point beyond each edge so the line runs to the border.
            if not view.autoRangeEnabled()[0]:
                (left, right), _ = view.viewRange()
                first = max(int(np.searchsorted(self._x, left)) - 1, 0)
                end = min(int(np.searchsorted(self._x, right, side="right")) + 1, end)
        if self._shown == (first, end, width):
            return
        self._shown = (first, end, width)
        x, y = self._x[first:end], self._y[first:end]
        if width > 0:
            # A minimum and a maximum per pixel look the same as every point.
            x, y = peak_downsampled(x, y, width)
        self.setData(x, y, skipFiniteCheck=True)
