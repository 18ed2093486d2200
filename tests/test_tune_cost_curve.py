"""The verification cost curve: measuring it, storing it with the pair, and the
speed-up it predicts with the acceptance a sweep saw."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from pathlib import Path

import pytest

from core.cli.tune_commands import run_sweep_command
from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    SamplingSettings,
    SpeculativeEngine,
)
from core.errors import ConfigError
from core.settings import SettingsStore, pair_key
from core.tune.calibration import calibrate
from core.tune.cost_curve import (
    DEFAULT_MAX_K,
    CostCurve,
    expected_accepted,
    expected_emitted,
    predicted_speedup,
)
from core.tune.prediction import (
    alpha_from_mean_length,
    curve_fits_sweep,
    fitted_alpha,
    pair_curve,
    predict,
    sweep_prediction,
    unmeasured_best,
)
from core.tune.prompt_sets import prompt_set_from_texts
from core.tune.results_store import curve_path, load_curve, save_curve
from core.tune.runner import EngineRunner
from core.tune.sweep import CellResult, SweepGrid, SweepResult
from core.worker import EngineWorker
from tests.conftest import TinyModels
from tests.support.sweep_results import measured_sweep
from tests.test_worker_process import draft_config, run, target_config

GREEDY = GenerationSettings(n_predict=24, sampling=SamplingSettings(temperature=0.0))


def curve_of(ms: list[float], draft_ms: float = 0.0) -> CostCurve:
    return CostCurve(tuple(ms), draft_ms, context=64, repeats=1)


# ----- the formula, on hand-made curves ---------------------------------------------


def test_a_flat_curve_and_a_free_draft_gain_every_expected_token() -> None:
    flat = curve_of([10.0] * 17)
    for k in (1, 4, 16):
        # One decode's cost emits 1 + α + … + α^k tokens.
        assert predicted_speedup(flat, 0.5, k) == pytest.approx(2 - 0.5**k)
    assert expected_emitted(1.0, 8) == 9
    assert expected_accepted(0.0, 8) == 0


def test_a_linear_curve_gains_nothing_even_when_every_draft_is_kept() -> None:
    linear = curve_of([10.0 * k for k in range(1, 18)])
    for k in range(1, 17):
        assert predicted_speedup(linear, 1.0, k) == pytest.approx(1.0)
        assert predicted_speedup(linear, 0.9, k) < 1.0


def test_the_draft_cost_and_an_override_for_ngram() -> None:
    flat = curve_of([10.0] * 17, draft_ms=5.0)
    # k = 2, all kept: 3 tokens for 2 * 5 + 10 ms instead of 3 * 10 ms.
    assert predicted_speedup(flat, 1.0, 2) == pytest.approx(1.5)
    assert predicted_speedup(flat, 1.0, 2, draft_ms=0.0) == pytest.approx(3.0)
    assert predict(flat, 1.0, DraftSource.NGRAM).speedups[2] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="1 … 16"):
        predicted_speedup(flat, 1.0, 17)


def test_the_best_length_stops_before_the_curve_jumps() -> None:
    # Flat up to a batch of 9 (8 drafts), then twice the cost: a kernel tile change.
    jumpy = curve_of([10.0] * 9 + [20.0] * 8, draft_ms=0.5)
    prediction = predict(jumpy, 0.9)
    best, speedup = prediction.best
    assert best == 8
    assert speedup == pytest.approx(expected_emitted(0.9, 8) * 10 / (8 * 0.5 + 10))
    # A poor draft on a steep curve: drafting one token is the least bad and still loses.
    steep = curve_of([10.0 * k for k in range(1, 18)], draft_ms=2.0)
    assert predict(steep, 0.3).best[0] == 1 and predict(steep, 0.3).best[1] < 1


def test_alpha_is_read_back_from_the_mean_kept_drafts() -> None:
    for alpha in (0.1, 0.5, 0.93):
        for k in (1, 4, 16):
            mean = expected_accepted(alpha, k)
            assert alpha_from_mean_length(mean, k) == pytest.approx(alpha, abs=1e-9)
    assert alpha_from_mean_length(0.0, 4) == 0.0
    assert alpha_from_mean_length(4.0, 4) == 1.0
    assert fitted_alpha([]) is None
    assert fitted_alpha(
        [(2, expected_accepted(0.5, 2)), (4, expected_accepted(0.7, 4)), (8, 7.99)]
    ) == pytest.approx(0.7)


def _cell(source: DraftSource, n_max: int, p_min: float, mean: float, speed: float) -> CellResult:
    drafting = DraftSettings(source=source, n_max=n_max, p_min=p_min, adaptive=False)
    return CellResult(drafting, speeds=[speed], acceptances=[0.5], mean_lengths=[mean])


def test_a_sweep_prediction_reads_alpha_from_uncut_cells_only() -> None:
    result = SweepResult(
        "chat",
        24,
        1,
        0.0,
        CellResult(DraftSettings(source=DraftSource.NONE), speeds=[10.0]),
        cells=[
            _cell(DraftSource.MODEL, 2, 0.0, expected_accepted(0.8, 2), 12.0),
            _cell(DraftSource.MODEL, 4, 0.0, expected_accepted(0.8, 4), 13.0),
            # p-min cuts drafts short: its mean says nothing about α at length 8.
            _cell(DraftSource.MODEL, 8, 0.5, 0.1, 11.0),
            _cell(DraftSource.NGRAM, 4, 0.0, expected_accepted(0.2, 4), 9.0),
        ],
    )
    flat = curve_of([10.0] * 17, draft_ms=1.0)
    model = sweep_prediction(result, flat)
    assert model is not None and model.alpha == pytest.approx(0.8, abs=1e-9)
    ngram = sweep_prediction(result, flat, DraftSource.NGRAM)
    assert ngram is not None and ngram.alpha == pytest.approx(0.2, abs=1e-9)
    # Best model length on this curve is not on the grid: calibration would measure it.
    best = model.best[0]
    assert best not in (2, 4) and unmeasured_best(model, result) == best
    empty = SweepResult("chat", 24, 1, 0.0, CellResult(DraftSettings(source=DraftSource.NONE)))
    assert sweep_prediction(empty, flat) is None


def test_curve_round_trips_and_rejects_bad_data() -> None:
    curve = curve_of([1.0, 1.5, 2.0], draft_ms=0.25)
    assert CostCurve.from_dict(curve.to_dict()) == curve
    assert curve.max_draft == 2 and curve.ratio(3) == 2.0
    with pytest.raises(ConfigError, match="positive"):
        curve_of([1.0, 0.0])
    with pytest.raises(ConfigError, match="not a saved cost curve"):
        CostCurve.from_dict({"target_ms": [1.0]})


# ----- measured on real models ----------------------------------------------------------


class CountingRunner(EngineRunner):
    """The engine runner, counting how often the curve is measured."""

    def __init__(self, engine: SpeculativeEngine) -> None:
        super().__init__(engine)
        self.measured = 0

    async def measure_cost_curve(
        self, max_k: int = DEFAULT_MAX_K, repeats: int = 5, context: int = 64
    ) -> CostCurve:
        self.measured += 1
        return await super().measure_cost_curve(max_k, repeats=2, context=context)


def test_the_curve_is_measured_once_per_pair_and_stored_with_it(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    runner = CountingRunner(tiny_engine)
    curve = asyncio.run(pair_curve(runner, "tiny|pair", tmp_path))
    assert len(curve.target_ms) == DEFAULT_MAX_K and min(curve.target_ms) > 0
    assert curve.draft_ms > 0 and curve.device
    assert load_curve("tiny|pair", tmp_path) == curve
    assert asyncio.run(pair_curve(runner, "tiny|pair", tmp_path)) == curve
    assert runner.measured == 1
    # The caches were emptied: the next answer equals one from a fresh engine.
    assert tiny_engine.target.cached_tokens == []
    # A damaged file is measured again, not an error.
    curve_path("tiny|pair", tmp_path).write_text("{")
    asyncio.run(pair_curve(runner, "tiny|pair", tmp_path))
    assert runner.measured == 2 and load_curve("tiny|pair", tmp_path) is not None


def test_a_curve_measured_in_another_placement_is_measured_again(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    runner = CountingRunner(tiny_engine)
    here = asyncio.run(runner.placement())
    assert "target" in here and "layers offloaded" in here
    # As if measured before the user offloaded the pair to a GPU.
    elsewhere = dataclasses.replace(
        asyncio.run(pair_curve(runner, "tiny|pair", tmp_path)),
        placement="CUDA NVIDIA H100; target 30 layers offloaded, draft 30",
    )
    save_curve(elsewhere, "tiny|pair", tmp_path)
    curve = asyncio.run(pair_curve(runner, "tiny|pair", tmp_path))
    assert runner.measured == 2 and curve.placement == here
    assert load_curve("tiny|pair", tmp_path) == curve


def test_a_saved_curve_far_from_the_sweeps_plain_speed_is_measured_again(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    runner = CountingRunner(tiny_engine)
    curve = asyncio.run(pair_curve(runner, "tiny|pair", tmp_path))
    # A sweep whose plain decoding took as long a token as the curve's single decode.
    agreeing = measured_sweep(1000.0 / curve.target_ms[0], {2: 1.0})
    assert curve_fits_sweep(curve, agreeing)
    assert asyncio.run(pair_curve(runner, "tiny|pair", tmp_path, sweep=agreeing)) == curve
    assert runner.measured == 1
    # Measured while something else loaded the machine: every decode 18x slower. Its
    # predictions (draft-max 1 best, 4.53x) would stand for good without this.
    loaded = dataclasses.replace(curve, target_ms=tuple(v * 18 for v in curve.target_ms))
    save_curve(loaded, "tiny|pair", tmp_path)
    assert not curve_fits_sweep(loaded, agreeing)
    again = asyncio.run(pair_curve(runner, "tiny|pair", tmp_path, sweep=agreeing))
    assert runner.measured == 2 and again != loaded
    assert load_curve("tiny|pair", tmp_path) == again
    # A curve far faster than the sweep's plain decoding is as suspect.
    assert not curve_fits_sweep(
        dataclasses.replace(curve, target_ms=tuple(v / 4 for v in curve.target_ms)), agreeing
    )


def test_the_engine_process_measures_the_curve(tiny_models: TinyModels) -> None:
    async def scenario(worker: EngineWorker) -> CostCurve:
        await worker.load(target_config(tiny_models), draft_config(tiny_models))
        return await worker.cost_curve(max_k=5, repeats=1, context=16)

    curve = run(scenario)
    assert len(curve.target_ms) == 5 and curve.draft_ms > 0 and curve.context == 16
    assert curve.placement.startswith("CPU ") and "draft" in curve.placement


@pytest.mark.demo_pair
def test_calibration_on_the_demo_pair_measures_stores_and_uses_the_curve(
    demo_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    prompts = prompt_set_from_texts("tiny", ["Tell me a story about a cat"])
    calibration = asyncio.run(
        calibrate(
            EngineRunner(demo_engine),
            prompts,
            GREEDY,
            store,
            "demo|pair",
            grid=SweepGrid(draft_max=(2,)),
            results_folder=tmp_path,
        )
    )
    curve = load_curve("demo|pair", tmp_path)
    assert curve is not None and curve == calibration.curve
    assert len(curve.target_ms) == DEFAULT_MAX_K and curve.draft_ms > 0
    prediction = calibration.prediction
    assert prediction is not None and 0 < prediction.alpha <= 1
    best, speedup = prediction.best
    lengths = [cell.drafting.n_max for cell in calibration.sweep.cells]
    if best != 2 and speedup > 1:
        # The grid missed the predicted best length: calibration measured it too.
        assert lengths == [2, best]
        assert len(calibration.sweep.baseline.speeds) == 2
    else:
        assert lengths == [2]
    assert f"predicted draft-max {best}" in calibration.describe()


def test_cli_sweep_predict_prints_and_saves_the_prediction(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Tell me a story\n")
    args = ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-t", "2", "-n", "12"]
    args += ["--prompts", str(prompts), "--draft-max", "2,4", "--predict"]
    out = io.StringIO()
    assert run_sweep_command([*args, "--json"], out, io.StringIO()) == 0
    data = json.loads(out.getvalue())
    assert len(data["cost_curve"]["target_ms"]) == DEFAULT_MAX_K
    assert 0 <= data["alpha"] <= 1
    assert set(data["predicted_speedup"]) == {str(k) for k in range(1, DEFAULT_MAX_K)}
    assert data["predicted_speedup"][str(data["predicted_best"])] == max(
        data["predicted_speedup"].values()
    )
    # Measured once, saved with the pair: the table run reuses the same curve.
    key = pair_key(tiny_models.target, tiny_models.draft, DraftSource.MODEL)
    assert load_curve(key) == CostCurve.from_dict(data["cost_curve"])
    out = io.StringIO()
    assert run_sweep_command(args, out, io.StringIO()) == 0
    assert "cost curve V(k)/V(1)" in out.getvalue()
    assert "predicted speed-up by draft-max" in out.getvalue()
    assert load_curve(key) == CostCurve.from_dict(data["cost_curve"])
