"""Predicted speed-up per draft length: a pair's cost curve and the acceptance its sweep saw.

A sweep measures a few draft lengths; the cost curve (core/tune/cost_curve.py)
prices every length. The acceptance α is read off the sweep's plain cells (fixed
length, no p-min or draft-min cut, so each step drafts exactly draft-max tokens),
and the formula then predicts every length, measured or not: the Tune tab draws
it next to the measured speed-ups, and calibration measures the predicted best
length when the grid missed it.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.engine import DraftSource, GenerationSettings
from core.errors import ConfigError
from core.tune.cost_curve import CostCurve, expected_accepted, predicted_speedup
from core.tune.prompt_sets import PromptSet
from core.tune.results_store import load_curve, save_curve
from core.tune.runner import AnswerRunner
from core.tune.sweep import (
    CellResult,
    SweepControl,
    SweepGrid,
    SweepProgress,
    SweepResult,
    run_sweep,
)

logger = logging.getLogger(__name__)


def alpha_from_mean_length(mean_accepted: float, k: int) -> float:
    """The per-token acceptance α whose expected kept drafts at length ``k`` equal
    ``mean_accepted`` (drafts survive one after another, each with probability α)."""
    if k < 1:
        raise ConfigError(f"draft length must be >= 1, got {k}")
    if mean_accepted <= 0:
        return 0.0
    if mean_accepted >= k:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(60):  # expected_accepted rises with α: bisect
        middle = (low + high) / 2
        if expected_accepted(middle, k) < mean_accepted:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def fitted_alpha(lengths: Iterable[tuple[int, float]]) -> float | None:
    """One α from (draft length, mean kept drafts) measurements: the median of each
    one's α (None without measurements)."""
    alphas = [alpha_from_mean_length(mean, k) for k, mean in lengths]
    return statistics.median(alphas) if alphas else None


@dataclass(frozen=True)
class Prediction:
    """Predicted speed-up per draft length for one draft source of a pair."""

    source: DraftSource
    alpha: float
    speedups: dict[int, float]

    @property
    def best(self) -> tuple[int, float]:
        """The draft length with the highest predicted speed-up, and that speed-up."""
        k = max(self.speedups, key=lambda n: self.speedups[n])
        return k, self.speedups[k]


def predict(curve: CostCurve, alpha: float, source: DraftSource = DraftSource.MODEL) -> Prediction:
    """Speed-up of every draft length the curve prices (n-gram lookup drafts for free)."""
    draft_ms = 0.0 if source is DraftSource.NGRAM else None
    return Prediction(
        source,
        alpha,
        {k: predicted_speedup(curve, alpha, k, draft_ms) for k in range(1, curve.max_draft + 1)},
    )


def fitting_cells(result: SweepResult, source: DraftSource) -> list[CellResult]:
    """The cells whose steps draft exactly draft-max tokens: fixed length, no cut."""
    return [
        cell
        for cell in result.cells
        if cell.drafting.source is source
        and not cell.drafting.adaptive
        and cell.drafting.n_min == 0
        and cell.drafting.p_min == 0.0
        and cell.mean_accepted_length > 0
    ]


def sweep_prediction(
    result: SweepResult, curve: CostCurve, source: DraftSource = DraftSource.MODEL
) -> Prediction | None:
    """The prediction for ``source`` from the sweep's acceptance (None when the sweep
    has no cell to read α from)."""
    alpha = fitted_alpha(
        (cell.drafting.n_max, cell.mean_accepted_length) for cell in fitting_cells(result, source)
    )
    return None if alpha is None else predict(curve, alpha, source)


# How far (either way) a curve's single-token time may be from the sweep's plain time
# per token before the curve counts as measured under other conditions. The plain
# pass also pays sampling and the engine's own work per token, so the two are not
# equal; a curve taken while another program loaded the machine was 18x off.
CURVE_AGREEMENT = 3.0


def curve_fits_sweep(curve: CostCurve, sweep: SweepResult) -> bool:
    """Whether ``curve``'s V(1) agrees with ``sweep``'s plain decoding speed."""
    tokens_per_second = sweep.baseline.decode_tokens_per_second
    if tokens_per_second <= 0:
        return True  # nothing to compare with
    ratio = curve.target_ms[0] / (1000.0 / tokens_per_second)
    return 1.0 / CURVE_AGREEMENT <= ratio <= CURVE_AGREEMENT


async def pair_curve(
    runner: AnswerRunner,
    pair_key: str,
    folder: Path | None = None,
    remeasure: bool = False,
    sweep: SweepResult | None = None,
) -> CostCurve:
    """The pair's saved cost curve, measured and saved first when it has none (or an
    unreadable one, or one measured in another placement, or ``remeasure``): once
    per pair and placement, a few seconds on the demo pair.

    With ``sweep``, a saved curve whose single-token time disagrees with the sweep's
    plain speed (``curve_fits_sweep``) is measured again: it was taken while the
    machine ran something else, and its predictions would be wrong for good."""
    curve = None
    if not remeasure:
        try:
            curve = load_curve(pair_key, folder)
        except ConfigError as exc:
            logger.warning("measuring the cost curve again: %s", exc)
    placement = await runner.placement()
    if curve is not None and curve.placement != placement:
        # Offloading layers, adding RPC workers or moving to another GPU changes
        # what a verification batch costs: the old curve would mislead.
        logger.info(
            "measuring the cost curve again: it was measured on %r, the pair now runs on %r",
            curve.placement,
            placement,
        )
        curve = None
    if curve is not None and sweep is not None and not curve_fits_sweep(curve, sweep):
        logger.info(
            "measuring the cost curve again: its single-token decode took %.1f ms, the "
            "sweep's plain decoding %.1f ms a token",
            curve.target_ms[0],
            1000.0 / sweep.baseline.decode_tokens_per_second,
        )
        curve = None
    if curve is None:
        curve = await runner.measure_cost_curve()
        save_curve(curve, pair_key, folder)
    return curve


def unmeasured_best(prediction: Prediction, result: SweepResult) -> int | None:
    """The predicted best draft length when it beats plain decoding and the sweep has
    not measured it (None otherwise)."""
    k, speedup = prediction.best
    measured = {cell.drafting.n_max for cell in fitting_cells(result, prediction.source)}
    return k if speedup > 1.0 and k not in measured else None


async def measure_predicted_best(
    runner: AnswerRunner,
    result: SweepResult,
    curve: CostCurve,
    prompt_set: PromptSet,
    settings: GenerationSettings,
    on_progress: Callable[[SweepProgress], None] | None = None,
    control: SweepControl | None = None,
) -> Prediction | None:
    """Predict every draft length from ``result`` and ``curve``; when the best predicted
    length was not in the grid, measure it too and add it to ``result`` (with its plain
    pass), so the choice between cells includes it."""
    prediction = sweep_prediction(result, curve)
    if prediction is None or result.partial:
        return prediction
    k = unmeasured_best(prediction, result)
    if k is not None:
        extra = await run_sweep(
            runner,
            prompt_set,
            SweepGrid(draft_max=(k,), p_min=(0.0,)),
            settings,
            result.repeats,
            on_progress=on_progress,
            control=control,
        )
        result.absorb(extra)
    return prediction
