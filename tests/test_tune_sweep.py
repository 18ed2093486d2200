"""Sweeps, A/B, results files and calibration, on the tiny real models."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from pathlib import Path

import pytest

from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    GenerationResult,
    GenerationSettings,
    SamplingSettings,
    SpeculativeEngine,
)
from core.engine.config import AUTO_DRAFT_MAX
from core.errors import ConfigError
from core.settings import SettingsStore
from core.tune.ab import run_ab
from core.tune.calibration import calibrate
from core.tune.prompt_sets import PromptSet, prompt_set_from_texts
from core.tune.results_store import (
    delete_older,
    delete_saved,
    legacy_result_path,
    load_result,
    pair_folder,
    read_result_file,
    save_result,
    saved_sweeps,
    to_csv,
)
from core.tune.runner import EngineRunner
from core.tune.sweep import (
    SweepControl,
    SweepGrid,
    SweepProgress,
    SweepResult,
    run_sweep,
    settings_label,
)

PROMPTS = prompt_set_from_texts("tiny", ["Tell me a story", "the cat and the dog"])
GREEDY = GenerationSettings(n_predict=24, sampling=SamplingSettings(temperature=0.0))
GRID = SweepGrid(draft_max=(2, 4), p_min=(0.0, 0.5))


def sweep(
    engine: SpeculativeEngine,
    grid: SweepGrid = GRID,
    prompts: PromptSet = PROMPTS,
    settings: GenerationSettings = GREEDY,
    control: SweepControl | None = None,
    on_progress: object = None,
    repeats: int = 2,
) -> SweepResult:
    return asyncio.run(
        run_sweep(
            EngineRunner(engine),
            prompts,
            grid,
            settings,
            repeats=repeats,
            control=control,
            on_progress=on_progress,  # type: ignore[arg-type]
        )
    )


def test_grid_cells_are_fixed_lengths_and_ngram_ignores_p_min() -> None:
    grid = SweepGrid(
        draft_max=(2, 8),
        p_min=(0.0, 0.5),
        draft_min=(0, 4),
        sources=(DraftSource.MODEL, DraftSource.NGRAM),
        also_auto=True,
    )
    cells = grid.cells(DraftSettings())
    model = [c for c in cells if c.source is DraftSource.MODEL and not c.adaptive]
    ngram = [c for c in cells if c.source is DraftSource.NGRAM and not c.adaptive]
    # draft-min 4 > draft-max 2 is skipped: (2,0)x2 p-min + (8,0)x2 + (8,4)x2.
    assert len(model) == 6
    assert len(ngram) == 3 and {c.p_min for c in ngram} == {0.0}
    auto = [c for c in cells if c.adaptive]
    assert [c.n_max for c in auto] == [AUTO_DRAFT_MAX, AUTO_DRAFT_MAX]
    assert SweepGrid(auto=True).cells(DraftSettings())[0].adaptive
    with pytest.raises(ConfigError, match="draft-max"):
        SweepGrid(draft_max=(0,))


def test_greedy_sweep_is_reproducible_and_exact(tiny_engine: SpeculativeEngine) -> None:
    first = sweep(tiny_engine, repeats=1)
    second = sweep(tiny_engine, repeats=1)
    assert not first.partial and len(first.cells) == 4
    assert [c.drafting for c in first.cells] == [c.drafting for c in second.cells]
    # Same cells, same answers: greedy speculation equals plain decoding.
    assert [c.outputs for c in first.cells] == [c.outputs for c in second.cells]
    assert first.baseline.outputs == second.baseline.outputs
    for cell in first.cells:
        assert first.identical_to_plain(cell)
        assert len(cell.speeds) == 1
        assert cell.acceptance > 0
    # One plain pass per cell, interleaved with the cells.
    assert len(first.baseline.speeds) == 4


def test_speedups_are_against_this_runs_baseline(tiny_engine: SpeculativeEngine) -> None:
    result = sweep(tiny_engine)
    assert all(len(cell.speeds) == 2 for cell in result.cells)  # the median of 2 repeats
    data = result.to_dict()
    base = data["baseline"]["decode_tokens_per_second"]
    assert base == result.baseline.decode_tokens_per_second > 0
    for row in data["results"]:
        assert row["speedup"] == pytest.approx(row["decode_tokens_per_second"] / base)
        assert set(row) >= {"settings", "decode_tokens_per_second", "speedup", "acceptance"}
    best = result.best()
    assert best is not None and data["best"] == result.cells.index(best)
    assert best.decode_tokens_per_second == max(c.decode_tokens_per_second for c in result.cells)


class _RecordingRunner(EngineRunner):
    """Notes which settings each answer ran with, in order."""

    def __init__(self, engine: SpeculativeEngine) -> None:
        super().__init__(engine)
        self.order: list[str] = []

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        self.order.append(settings_label(settings.drafting))
        return await super().answer(prompt, settings)


def test_cells_are_measured_round_by_round_with_plain_passes_spread_over_the_run(
    tiny_engine: SpeculativeEngine,
) -> None:
    # Block by block, the last cells ran minutes after the first on a machine whose
    # speed drifts; round by round, every cell sees the same stretch of the run.
    runner = _RecordingRunner(tiny_engine)
    grid = SweepGrid(draft_max=(2, 4, 8))
    prompts = prompt_set_from_texts("one", ["the cat and the dog"])
    seen: list[tuple[int, int]] = []

    def note(progress: SweepProgress) -> None:
        if progress.finished_cell is not None:  # else: one more answer done
            seen.append((progress.cell_index, len(progress.finished_cell.speeds)))

    result = asyncio.run(run_sweep(runner, prompts, grid, GREEDY, repeats=2, on_progress=note))
    two, four, eight = (f"model max={n} min=0 p=0" for n in (2, 4, 8))
    # The warm-up answer; then round 1 (plain before cells 0 and 2) and round 2
    # (plain before cell 1): as many plain passes as cells, as before.
    assert runner.order[1:] == [
        "plain", two, four, "plain", eight,
        two, "plain", four, eight,
    ]  # fmt: skip
    assert seen == [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]
    assert result.complete and all(len(cell.speeds) == 2 for cell in result.cells)
    assert len(result.baseline.speeds) == 3


def test_a_sweep_cancelled_in_its_second_round_keeps_every_cell_measured_once(
    tiny_engine: SpeculativeEngine,
) -> None:
    control = SweepControl()

    def cancel_in_the_second_round(progress: SweepProgress) -> None:
        if progress.finished_cell is not None and len(progress.finished_cell.speeds) == 2:
            control.cancel()

    result = sweep(tiny_engine, control=control, on_progress=cancel_in_the_second_round)
    assert result.partial and not result.complete
    assert [len(cell.speeds) for cell in result.cells] == [2, 1, 1, 1]
    assert result.describe_partial() == (
        "cancelled with 4 of 4 cells measured, 3 of them fewer than 2 times"
    )


def test_cancelled_sweep_keeps_finished_cells_and_says_partial(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    control = SweepControl()

    def cancel_after_first_cell(progress: SweepProgress) -> None:
        if progress.finished_cell is not None:
            control.cancel()

    result = sweep(tiny_engine, control=control, on_progress=cancel_after_first_cell)
    assert result.partial and len(result.cells) == 1 and result.planned_cells == 4
    path = save_result(result, "tiny|pair", tmp_path)
    loaded = read_result_file(path)
    assert loaded.partial and len(loaded.cells) == 1
    assert loaded.speedup(loaded.cells[0]) == pytest.approx(result.speedup(result.cells[0]))
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_failed_write_leaves_the_previous_result_and_no_partial_file(
    tiny_engine: SpeculativeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sweep(tiny_engine, grid=SweepGrid(draft_max=(2,)))
    path = save_result(result, "tiny|pair", tmp_path)
    before = path.read_text()

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    result.partial = True
    with pytest.raises(OSError, match="disk full"):
        save_result(result, "tiny|pair", tmp_path)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert load_result("tiny|pair", tmp_path) is not None


def test_results_reload_and_export_as_csv(tiny_engine: SpeculativeEngine, tmp_path: Path) -> None:
    result = sweep(tiny_engine, grid=SweepGrid(draft_max=(2, 4), also_auto=True))
    assert load_result("other", tmp_path) is None
    save_result(result, "tiny|pair", tmp_path)
    loaded = load_result("tiny|pair", tmp_path)
    assert loaded is not None
    assert [c.drafting for c in loaded.cells] == [c.drafting for c in result.cells]
    assert loaded.cells[-1].drafting.adaptive
    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    assert rows[0]["source"] == "none" and len(rows) == 1 + len(result.cells)
    assert [r["best"] for r in rows].count("yes") == 1
    assert rows[-1]["draft_max"] == "auto"
    assert pair_folder("a/b:c|d", tmp_path).parent == tmp_path
    with pytest.raises(ConfigError, match="not a saved sweep"):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"results": []}))
        read_result_file(bad)


def test_ab_gives_both_answers_and_greedy_identity(tiny_engine: SpeculativeEngine) -> None:
    settings = GenerationSettings(
        n_predict=24,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(n_max=4, adaptive=False),
    )
    result = asyncio.run(
        run_ab(EngineRunner(tiny_engine), [ChatMessage("user", "Tell me a story")], settings)
    )
    assert result.identical and result.identity_promised
    assert result.plain.stats.n_drafted == 0 and result.speculative.stats.n_drafted > 0
    assert result.speedup == pytest.approx(
        result.speculative.stats.decode_tokens_per_second
        / result.plain.stats.decode_tokens_per_second
    )
    if result.speedup < 1:
        assert "slower than plain" in result.slower_warning()
    else:
        assert result.slower_warning() == ""


def test_calibration_saves_the_best_setting_for_the_pair(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    calibration = asyncio.run(
        calibrate(
            EngineRunner(tiny_engine),
            PROMPTS,
            GREEDY,
            store,
            "tiny|pair",
            grid=SweepGrid(draft_max=(2, 4)),
        )
    )
    saved = SettingsStore(tmp_path / "settings.json").pair_settings("tiny|pair")
    if calibration.drafting is None:
        assert saved.generation.drafting.adaptive
        assert "adaptive" in calibration.describe()
    else:
        best = calibration.sweep.best()
        assert best is not None
        assert saved.generation.drafting.n_max == best.drafting.n_max
        assert not saved.generation.drafting.adaptive
        assert "chose" in calibration.describe()


def test_every_saved_sweep_is_kept_listed_reloadable_and_deletable(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    result = sweep(tiny_engine, grid=SweepGrid(draft_max=(2, 4), p_min=(0.0, 0.5)), repeats=1)
    # A pair's one sweep from before the history is listed as its oldest entry.
    legacy = legacy_result_path("tiny|pair", tmp_path)
    legacy.write_text(json.dumps({**result.to_dict(), "prompt_set": "old"}))
    paths = []
    for name in ("chat", "code", "rewrite"):
        result.prompt_set = name
        paths.append(save_result(result, "tiny|pair", tmp_path))
    entries = saved_sweeps("tiny|pair", tmp_path)
    assert [e.prompt_set for e in entries] == ["rewrite", "code", "chat", "old"]
    assert [e.path for e in entries] == [*reversed(paths), legacy]
    newest = entries[0]
    assert newest.grid == "model draft-max 2,4 x p-min 0,0.5" and newest.cells == 4
    best = result.best()
    assert best is not None and newest.best_speedup == pytest.approx(result.speedup(best))
    assert newest.saved_at[:4].isdigit() and "rewrite" in newest.describe()
    loaded = load_result("tiny|pair", tmp_path)
    assert loaded is not None and loaded.prompt_set == "rewrite"
    assert read_result_file(entries[2].path).prompt_set == "chat"
    delete_saved(entries[1])
    assert [e.prompt_set for e in saved_sweeps("tiny|pair", tmp_path)] == ["rewrite", "chat", "old"]
    assert delete_older("tiny|pair", keep=1, folder=tmp_path) == 2
    assert [e.prompt_set for e in saved_sweeps("tiny|pair", tmp_path)] == ["rewrite"]
    assert not legacy.exists()
    assert saved_sweeps("other", tmp_path) == []
