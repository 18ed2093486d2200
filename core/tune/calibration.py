"""Calibration: a short sweep that picks fixed draft settings for a pair and saves them
with the pair, so the next chat with it starts tuned.

The pair's verification cost curve (measured once and kept with its results) and
the acceptance the sweep saw predict every draft length; when the predicted best
is not on the grid it is measured too, so calibration is not limited to the grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.engine import DraftSettings, GenerationSettings
from core.settings import PairSettings, SettingsStore
from core.tune.cost_curve import CostCurve
from core.tune.prediction import Prediction, measure_predicted_best, pair_curve
from core.tune.prompt_sets import PromptSet
from core.tune.runner import AnswerRunner
from core.tune.sweep import (
    SweepControl,
    SweepGrid,
    SweepProgress,
    SweepResult,
    run_sweep,
    settings_label,
)

# Short enough to run in a minute or two on a CPU, wide enough to find the knee.
CALIBRATION_GRID = SweepGrid(draft_max=(2, 4, 8, 16), p_min=(0.0, 0.5))
CALIBRATION_TOKENS = 96


@dataclass(frozen=True)
class Calibration:
    """What calibration chose: ``drafting`` (None when no cell beat plain decoding, in
    which case the default adaptive mode is saved: it stops drafting while drafting
    loses, so it runs close to plain decoding where drafting does not pay)."""

    sweep: SweepResult
    drafting: DraftSettings | None
    curve: CostCurve | None = None
    prediction: Prediction | None = None

    def describe(self) -> str:
        best = self.sweep.best()
        if best is None:
            return "calibration was cancelled before any setting was measured"
        speed = f"{self.sweep.speedup(best):.2f}x plain"
        if self.drafting is None:
            text = (
                f"no fixed setting beat plain decoding (the fastest, "
                f"{settings_label(best.drafting)}, ran at {speed}), so none is chosen: the "
                "adaptive draft length is used instead, which stops drafting while "
                "drafting loses"
            )
        else:
            text = f"chose {settings_label(self.drafting)} ({speed})"
        return text + describe_prediction(self.prediction)


def describe_prediction(prediction: Prediction | None) -> str:
    """``"; the cost curve predicted draft-max 6 best (1.31x, acceptance 0.93 per token)"``."""
    if prediction is None:
        return ""
    k, speedup = prediction.best
    return (
        f"; the cost curve predicted draft-max {k} best ({speedup:.2f}x, "
        f"acceptance {prediction.alpha:.2f} per token)"
    )


def chosen_settings(sweep: SweepResult, base: DraftSettings) -> DraftSettings | None:
    """The fastest cell's settings when it beat plain decoding, else None."""
    best = sweep.winner()
    if best is None:
        return None
    return replace(
        base,
        n_max=best.drafting.n_max,
        n_min=best.drafting.n_min,
        p_min=best.drafting.p_min,
        adaptive=False,
    )


def without_a_winner(current: DraftSettings) -> DraftSettings:
    """What to use when no fixed setting beat plain decoding: the default adaptive
    mode. The lengths calibration chooses (draft-max, draft-min, p-min) go back to
    their defaults too, so a fixed length an earlier calibration chose does not stay
    on as the adaptive mode's ceiling; the source and verification are kept."""
    defaults = DraftSettings()
    return replace(
        current, n_max=defaults.n_max, n_min=defaults.n_min, p_min=defaults.p_min, adaptive=True
    )


def apply_to_pair(
    store: SettingsStore, pair_key: str, drafting: DraftSettings | None
) -> PairSettings:
    """Save ``drafting`` (None: ``without_a_winner``) as the pair's draft settings."""
    current = store.pair_settings(pair_key)
    old = current.generation.drafting
    new = drafting if drafting is not None else without_a_winner(old)
    # The pair's draft source is its own (model or n-gram); calibration keeps it.
    new = replace(new, source=old.source)
    updated = replace(current, generation=replace(current.generation, drafting=new))
    store.set_pair_settings(pair_key, updated)
    return updated


async def calibrate(
    runner: AnswerRunner,
    prompt_set: PromptSet,
    settings: GenerationSettings,
    store: SettingsStore,
    pair_key: str,
    grid: SweepGrid = CALIBRATION_GRID,
    on_progress: Callable[[SweepProgress], None] | None = None,
    control: SweepControl | None = None,
    results_folder: Path | None = None,
) -> Calibration:
    """Sweep ``grid`` (plus the length the cost curve predicts best, when the grid
    missed it) and save the fastest setting for the pair (nothing if cancelled)."""
    sweep = await run_sweep(
        runner, prompt_set, grid, settings, 1, on_progress=on_progress, control=control
    )
    curve, prediction = None, None
    if not sweep.partial and sweep.cells:
        # After the sweep: its plain pass tells whether a saved curve still holds.
        curve = await pair_curve(runner, pair_key, results_folder, sweep=sweep)
        prediction = await measure_predicted_best(
            runner, sweep, curve, prompt_set, settings, on_progress, control
        )
    chosen = chosen_settings(sweep, settings.drafting)
    if not sweep.partial:
        apply_to_pair(store, pair_key, chosen)
    return Calibration(sweep, chosen, curve, prediction)
