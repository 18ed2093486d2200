"""Sweeps, A/B, results files and calibration, on the tiny real models."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from dataclasses import replace
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
from core.engine.draft_hindsight import RECORD_TOKENS
from core.errors import ConfigError
from core.settings import SettingsStore
from core.tune.ab import run_ab
from core.tune.calibration import calibrate
from core.tune.prompt_sets import PromptSet, prompt_set_from_texts
from core.tune.results_store import (
    SavedSweep,
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
    WarmUp,
    run_sweep,
    settings_label,
)
from tests.support.sweep_results import measured_sweep

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
    # Plain decoding is measured like one more cell: one pass per round.
    assert len(first.baseline.speeds) == 1


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
        self.prompts: list[list[int]] = []
        self.lengths: list[int] = []

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        self.order.append(settings_label(settings.drafting))
        self.prompts.append(prompt)
        self.lengths.append(settings.n_predict)
        result = await super().answer(prompt, settings)
        return result


def test_cells_take_turns_prompt_by_prompt_with_plain_decoding_among_them(
    tiny_engine: SpeculativeEngine,
) -> None:
    # Cell by cell, a cell's pass took one stretch of the run and the machine's
    # drift over seconds set the cells apart; prompt by prompt, every cell's pass
    # spans the whole round.
    runner = _RecordingRunner(tiny_engine)
    grid = SweepGrid(draft_max=(2, 4))
    seen: list[list[int]] = []
    prompts_seen: list[int | None] = []

    def note(progress: SweepProgress) -> None:
        assert progress.result.running and not progress.result.complete
        if progress.cells_refreshed:  # else: one more answer done
            seen.append([len(cell.speeds) for cell in progress.result.cells])
            prompts_seen.append(progress.result.prompts_measured)

    result = asyncio.run(run_sweep(runner, PROMPTS, grid, GREEDY, repeats=2, on_progress=note))
    two, four = (f"model max={n} min=0 p=0" for n in (2, 4))
    # The warm-up answer; then each prompt of each round, its order rotated by one.
    assert runner.order[1:] == [
        "plain", two, four,  # round 1, prompt 1
        two, four, "plain",  # round 1, prompt 2
        two, four, "plain",  # round 2, prompt 1
        four, "plain", two,  # round 2, prompt 2
    ]  # fmt: skip
    # Every cell shows up after the first prompt; its pass is refreshed in place
    # until the round ends, and the next round adds a second one.
    assert seen == [[1, 1], [1, 1], [2, 2], [2, 2]]
    # The first round counts the prompts every cell has answered so far.
    assert prompts_seen == [1, 2, None, None]
    assert not result.running and result.prompts_measured is None
    assert result.complete and all(len(cell.speeds) == 2 for cell in result.cells)
    assert len(result.baseline.speeds) == 2
    # The first pass covers both prompts (its outputs are kept for the exactness check).
    assert all(len(cell.outputs) == 2 for cell in result.cells)


def test_an_adaptive_cell_first_answers_the_sets_prompts_from_the_last_back(
    tiny_engine: SpeculativeEngine,
) -> None:
    # An adaptive answer starts from the last one's memory: without this warm-up,
    # the first round's would start from whatever ran before the sweep.
    runner = _RecordingRunner(tiny_engine)
    grid = SweepGrid(draft_max=(2,), also_auto=True)
    result = asyncio.run(run_sweep(runner, PROMPTS, grid, GREEDY, repeats=2))
    first, last = (tiny_engine.tokenize_chat(list(p)) for p in PROMPTS.prompts)
    two = "model max=2 min=0 p=0"
    # Two answers of 24 tokens do not fill the memory's record: both prompts warm up.
    assert GREEDY.n_predict * len(PROMPTS.prompts) < RECORD_TOKENS
    assert runner.order[:3] == ["plain", "model auto", "model auto"]
    assert runner.prompts[1:3] == [last, first]
    # The adaptive warm-up answers are whole answers, as long as the measured ones.
    assert runner.lengths[1:3] == [GREEDY.n_predict] * 2
    assert runner.order[3:6] == ["plain", two, "model auto"]  # round 1, prompt 1
    assert result.complete and all(len(cell.speeds) == 2 for cell in result.cells)


class _DraftingReportRunner(_RecordingRunner):
    """Reports every adaptive answer as ``steps`` drafting steps that kept
    ``kept`` tokens each (the tiny test pair rarely drafts for long)."""

    def __init__(self, engine: SpeculativeEngine, steps: int, kept: int) -> None:
        super().__init__(engine)
        self.steps, self.kept = steps, kept

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        result = await super().answer(prompt, settings)
        drafting = settings.drafting
        if drafting.source is DraftSource.NONE or not drafting.adaptive:
            return result
        histogram = [0] * (self.kept + 1)
        histogram[self.kept] = self.steps
        stats = replace(
            result.stats,
            n_accept=self.steps * self.kept,
            accepted_length_histogram=tuple(histogram),
        )
        return replace(result, stats=stats)


@pytest.mark.parametrize(
    "steps, kept, warm_up_answers",
    [
        (10, 9, 2),  # 100 tokens an answer: the second fills the 192-token record
        (0, 0, 4),  # drafting off: the record never fills, every prompt once
    ],
)
def test_the_adaptive_warm_up_answers_until_its_drafting_steps_fill_the_record(
    tiny_engine: SpeculativeEngine, steps: int, kept: int, warm_up_answers: int
) -> None:
    assert 10 * (9 + 1) < RECORD_TOKENS <= 2 * 10 * (9 + 1)
    runner = _DraftingReportRunner(tiny_engine, steps, kept)
    texts = ["Tell me a story", "the cat and the dog", "count to twenty", "name some birds"]
    prompts = prompt_set_from_texts("four", texts)
    grid = SweepGrid(draft_max=(2,), also_auto=True)
    reports: list[SweepProgress] = []
    asyncio.run(run_sweep(runner, prompts, grid, GREEDY, repeats=1, on_progress=reports.append))
    tokenized = [tiny_engine.tokenize_chat(list(p)) for p in prompts.prompts]
    # After the short plain warm-up: adaptive answers from the last prompt back.
    assert runner.order[1 : 2 + warm_up_answers] == ["model auto"] * warm_up_answers + ["plain"]
    assert runner.prompts[1 : 1 + warm_up_answers] == tokenized[::-1][:warm_up_answers]
    # Each warm-up answer is reported as it starts, none as measured; then the first
    # round starts from 0 of 12 answers (3 cells with plain, 4 prompts).
    warm_ups = [r.warm_up for r in reports[:warm_up_answers]]
    assert warm_ups == [WarmUp("model auto", n, 4) for n in range(1, warm_up_answers + 1)]
    assert all(r.done == 0 and r.total == 12 for r in reports[: warm_up_answers + 1])
    assert reports[0].describe() == (
        "warming up model auto on the set: answer 1 of at most 4, not measured"
    )
    assert reports[warm_up_answers].warm_up is None
    assert reports[warm_up_answers].describe() == "0/12 answers"
    assert [r.done for r in reports if r.warm_up is None and not r.cells_refreshed] == list(
        range(13)
    )


def test_a_sweep_cancelled_in_the_adaptive_warm_up_measures_nothing_and_says_so(
    tiny_engine: SpeculativeEngine,
) -> None:
    control = SweepControl()

    class CancelAfterFirstAdaptive(_RecordingRunner):
        async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
            result = await super().answer(prompt, settings)
            if settings.drafting.source is not DraftSource.NONE:
                control.cancel()
            return result

    runner = CancelAfterFirstAdaptive(tiny_engine)
    grid = SweepGrid(draft_max=(2,), also_auto=True)
    result = asyncio.run(run_sweep(runner, PROMPTS, grid, GREEDY, repeats=1, control=control))
    # The short plain warm-up and one adaptive warm-up answer, then nothing more.
    assert runner.order == ["plain", "model auto"]
    assert result.partial and not result.running
    assert not result.baseline.speeds
    assert all(not cell.speeds for cell in result.cells)


def test_a_sweep_of_fixed_lengths_warms_up_with_one_short_plain_answer(
    tiny_engine: SpeculativeEngine,
) -> None:
    runner = _RecordingRunner(tiny_engine)
    asyncio.run(run_sweep(runner, PROMPTS, SweepGrid(draft_max=(2,)), GREEDY, repeats=1))
    two = "model max=2 min=0 p=0"
    assert runner.order == ["plain", "plain", two, two, "plain"]
    assert runner.lengths[0] < GREEDY.n_predict


def test_a_sweep_cancelled_in_its_second_round_keeps_the_first_round_of_every_cell(
    tiny_engine: SpeculativeEngine,
) -> None:
    control = SweepControl()

    def cancel_in_the_second_round(progress: SweepProgress) -> None:
        if progress.cells_refreshed and len(progress.result.baseline.speeds) == 2:
            control.cancel()

    result = sweep(tiny_engine, control=control, on_progress=cancel_in_the_second_round)
    assert result.partial and not result.complete
    assert [len(cell.speeds) for cell in result.cells] == [1, 1, 1, 1]
    assert len(result.baseline.speeds) == 1 and result.prompts_measured is None
    assert result.describe_partial() == (
        "cancelled after 1 of 2 rounds; every cell is measured once"
    )


def test_cancelled_sweep_keeps_every_cell_on_the_prompts_answered_and_says_partial(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    control = SweepControl()

    def cancel_after_the_first_prompt(progress: SweepProgress) -> None:
        if progress.cells_refreshed:
            control.cancel()

    result = sweep(tiny_engine, control=control, on_progress=cancel_after_the_first_prompt)
    assert result.partial and len(result.cells) == 4 and result.planned_cells == 4
    assert result.prompts_measured == 1 and result.prompt_count == 2
    assert all(len(cell.speeds) == 1 and len(cell.outputs) == 1 for cell in result.cells)
    assert result.describe_partial() == (
        "cancelled in the first round after 1 of 2 prompts; every cell is measured on those prompts"
    )
    path = save_result(result, "tiny|pair", tmp_path)
    loaded = read_result_file(path)
    assert loaded.partial and len(loaded.cells) == 4 and loaded.prompts_measured == 1
    assert loaded.describe_partial() == result.describe_partial()
    assert loaded.speedup(loaded.cells[0]) == pytest.approx(result.speedup(result.cells[0]))
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_sweep_cancelled_before_the_first_prompt_is_done_has_no_cells(
    tiny_engine: SpeculativeEngine,
) -> None:
    control = SweepControl()

    def cancel_after_two_answers(progress: SweepProgress) -> None:
        if progress.done == 2:
            control.cancel()

    result = sweep(tiny_engine, control=control, on_progress=cancel_after_two_answers)
    assert result.partial and result.cells == [] and not result.baseline.speeds
    assert result.describe_partial() == (
        "cancelled before every cell had answered the first prompt"
    )


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
    # Plain is the row to use when no setting beat it (the tiny pair's drafts seldom pay).
    assert (rows[0]["best"] == "yes") == (result.winner() is None)
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


class _SlowDraftRunner(EngineRunner):
    """Every drafting answer decodes four times slower than it did: no cell beats plain."""

    async def answer(self, prompt: list[int], settings: GenerationSettings) -> GenerationResult:
        result = await super().answer(prompt, settings)
        if settings.drafting.source is DraftSource.NONE:
            return result
        return replace(result, stats=replace(result.stats, decode_ms=result.stats.decode_ms * 4))


def test_calibration_saves_no_setting_slower_than_plain(
    tiny_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    # An earlier calibration chose a fixed length that paid then.
    earlier = store.pair_settings("tiny|pair")
    fixed = DraftSettings(n_max=2, n_min=1, p_min=0.5, adaptive=False)
    store.set_pair_settings(
        "tiny|pair", replace(earlier, generation=replace(earlier.generation, drafting=fixed))
    )
    calibration = asyncio.run(
        calibrate(
            _SlowDraftRunner(tiny_engine),
            PROMPTS,
            GREEDY,
            store,
            "tiny|pair",
            grid=SweepGrid(draft_max=(2, 4)),
            results_folder=tmp_path,
        )
    )
    sweep_result = calibration.sweep
    best = sweep_result.best()
    assert best is not None and sweep_result.speedup(best) < 1.0
    assert sweep_result.winner() is None and calibration.drafting is None
    saved = SettingsStore(tmp_path / "settings.json").pair_settings("tiny|pair")
    defaults = DraftSettings()
    # Neither the slower cell nor the earlier fixed length: the default adaptive mode.
    assert saved.generation.drafting == replace(defaults, source=fixed.source)
    text = calibration.describe()
    assert "no fixed setting beat plain decoding" in text and "none is chosen" in text
    assert f"{sweep_result.speedup(best):.2f}x plain" in text


def test_the_fastest_cell_is_recommended_only_when_it_beats_plain() -> None:
    slower = measured_sweep(59.4, {2: 52.5, 4: 40.0})
    assert slower.best() is slower.cells[0]  # the fastest cell, for the records
    assert slower.winner() is None
    assert slower.no_winner() == (
        "no draft setting beat plain decoding on this pair; plain is fastest "
        "(the fastest setting, model max=2 min=0 p=0, ran at 0.88x plain)"
    )
    assert slower.to_dict()["best_beats_plain"] is False
    faster = measured_sweep(50.0, {2: 40.0, 4: 60.0})
    assert faster.winner() is faster.cells[1] is faster.best()
    assert faster.to_dict()["best_beats_plain"] is True


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


def test_absorbing_a_run_cut_in_its_first_round_adds_no_cell_measured_on_fewer_prompts(
    tiny_engine: SpeculativeEngine,
) -> None:
    # Calibration measures the predicted best length in a second run and absorbs it.
    result = sweep(tiny_engine, grid=SweepGrid(draft_max=(2,)), repeats=1)
    baseline_passes = list(result.baseline.speeds)
    control = SweepControl()

    def cancel_after_the_first_prompt(progress: SweepProgress) -> None:
        if progress.cells_refreshed:
            control.cancel()

    cut = sweep(
        tiny_engine,
        grid=SweepGrid(draft_max=(5,)),
        repeats=1,
        control=control,
        on_progress=cancel_after_the_first_prompt,
    )
    assert cut.prompts_measured == 1 and len(cut.cells) == 1
    result.absorb(cut)
    assert [cell.drafting.n_max for cell in result.cells] == [2]
    assert result.baseline.speeds == baseline_passes
    assert result.partial and result.planned_cells == 2
    assert result.describe_partial() == "cancelled with 1 of 2 cells measured"
    # A finished run joins: its cell, and its plain pass in the baseline's median.
    whole = sweep(tiny_engine, grid=SweepGrid(draft_max=(3,)), repeats=1)
    result.absorb(whole)
    assert [cell.drafting.n_max for cell in result.cells] == [2, 3]
    assert len(result.baseline.speeds) == 2


def test_a_saved_sweep_where_drafting_lost_names_no_best(tmp_path: Path) -> None:
    common = {"path": tmp_path, "saved_at": "2026-11-29T13:00:00", "prompt_set": "chat"}
    common |= {"grid": "model draft-max 2", "cells": 1, "partial": False, "how_far": ""}
    won = SavedSweep(**common, best_speedup=1.31)  # type: ignore[arg-type]
    lost = SavedSweep(**common, best_speedup=0.88)  # type: ignore[arg-type]
    assert won.describe().endswith("best 1.31x")
    assert lost.describe().endswith("plain fastest (drafting at most 0.88x)")
    assert "best" not in lost.describe()
