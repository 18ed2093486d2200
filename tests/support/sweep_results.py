"""Made-up sweep results: fixed draft lengths measured against plain decoding."""

from __future__ import annotations

from core.engine import DraftSettings, DraftSource
from core.tune.sweep import CellResult, SweepResult


def measured_sweep(plain: float, speeds: dict[int, float]) -> SweepResult:
    """A finished one-pass sweep: draft-max -> tokens/s, and plain at ``plain``."""
    cells = [
        CellResult(
            DraftSettings(n_max=n_max, adaptive=False),
            speeds=[speed],
            acceptances=[0.8],
            mean_lengths=[1.6],
        )
        for n_max, speed in speeds.items()
    ]
    baseline = CellResult(DraftSettings(source=DraftSource.NONE), speeds=[plain])
    return SweepResult("chat", 4, 1, 0.0, baseline, cells, planned_cells=len(cells))
