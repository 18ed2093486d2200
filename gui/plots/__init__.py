"""pyqtgraph plots of how speculation went."""

from gui.plots.speculation_plots import (
    AcceptancePerStepPlot,
    AcceptedLengthPlot,
    DraftPositionPlot,
    InterTokenLatencyPlot,
    SpeculationPlot,
    SpeculationSeries,
)

__all__ = [
    "AcceptancePerStepPlot",
    "AcceptedLengthPlot",
    "DraftPositionPlot",
    "InterTokenLatencyPlot",
    "SpeculationPlot",
    "SpeculationSeries",
]
