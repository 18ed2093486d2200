"""The theme's colours on a pyqtgraph plot: its background, title and axes.

The speculation graphs and the Tune tab's sweep plots look alike in both themes;
each re-colours its own data items after this.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyqtgraph as pg

from gui.theme import colors


def theme_plot(plot: pg.PlotWidget, title: str, axis_labels: Mapping[str, str]) -> None:
    """Background, title and the named axes (``{"bottom": ..., "left": ...}``) in the
    palette now in use."""
    theme = colors()
    plot.setBackground(theme.surface)
    item = plot.getPlotItem()
    item.setTitle(title, color=theme.text, size="9pt")
    for name, label in axis_labels.items():
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(theme.border))
        axis.setTextPen(pg.mkPen(theme.muted))
        axis.setLabel(label, color=theme.muted)
