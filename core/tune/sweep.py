"""Sweeps: draft settings on a grid, each measured against plain decoding in the same run.

Order of the runs: round after round, and within a round prompt by prompt: every
cell, and plain decoding as one more cell, answers prompt 1, then every cell
answers prompt 2, and so on, each prompt in a rotated order so no cell always runs
first or last. A cell's pass (total tokens over total decoding time of the prompt
set) is then spread over the whole round. Measured cell by cell (a pass of one
cell, then a pass of the next), five cells of the same settings read up to 16%
apart and the fastest 3-12% above a given one, on a machine whose speed wanders
over seconds; prompt by prompt, 2-6% and 0-4.5% (sweep_order_bench.py in
tests/benchmarks). A cell's speed is the median of its passes, and the baseline is
the median of plain decoding's passes, so every speed-up is against this run's own
plain speed. Before the first round, one short plain answer warms the process up, and
each adaptive cell answers the set's prompts from the last one back until its memory
of recent drafts holds this set's tokens only, so that its first round starts, as its
later ones do, from what it learned on this set (an adaptive answer starts from the
previous one's memory).

While a round runs, each finished prompt refreshes every cell's numbers (the
pass so far), so cells show up after the first prompt and refine. A cancelled
sweep keeps what every cell has measured on the same prompts: in the first round
the prompts finished so far, later the rounds finished so far; it says it is
partial and how far it got.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationResult,
    GenerationSettings,
    StopReason,
)
from core.engine.config import AUTO_DRAFT_MAX, RANDOM_SEED, Verification
from core.engine.draft_hindsight import RECORD_TOKENS
from core.errors import ConfigError
from core.tune.ab import plain_settings
from core.tune.prompt_sets import PromptSet
from core.tune.runner import AnswerRunner

SWEEP_SEED = 1
# Prompt tokens are processed before timing starts, but the first answers of a
# fresh process run slow (allocation, page faults): one short answer warms up.
_WARM_UP_TOKENS = 16


def parse_values(text: str, kind: type[int] | type[float], what: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (a grid axis as the user types it)."""
    try:
        values = tuple(kind(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"{what}: write numbers separated by commas, e.g. 2,4,8") from None
    if not values:
        raise ConfigError(f"{what}: give at least one value")
    return values


@dataclass(frozen=True)
class SweepGrid:
    """The settings a sweep tries.

    Attributes:
        draft_max / p_min / draft_min: values of each knob; cells are their product.
        sources: draft sources; an n-gram draft has no confidence, so p-min does not
            vary for it.
        auto: instead of the grid, the adaptive draft length (``--draft-max auto``)
            as the single cell (one per source).
        also_auto: the grid and, after it, the adaptive cell(s): compares the adaptive
            length with the best fixed one in the same run.
    """

    draft_max: tuple[int, ...] = (2, 4, 8, 16)
    p_min: tuple[float, ...] = (0.0,)
    draft_min: tuple[int, ...] = (0,)
    sources: tuple[DraftSource, ...] = (DraftSource.MODEL,)
    auto: bool = False
    also_auto: bool = False

    def __post_init__(self) -> None:
        if not self.auto and not (self.draft_max and self.p_min and self.draft_min):
            raise ConfigError("a sweep needs at least one value of draft-max, p-min and draft-min")
        if not self.sources:
            raise ConfigError("a sweep needs at least one draft source")
        for value in self.draft_max:
            if value < 1:
                raise ConfigError(f"draft-max values must be >= 1, got {value}")

    def cells(self, base: DraftSettings) -> list[DraftSettings]:
        """Each cell's draft settings, fixed length (``base`` gives verification etc.)."""
        auto_cells = [
            replace(base, source=source, n_max=AUTO_DRAFT_MAX, n_min=0, adaptive=True)
            for source in self.sources
        ]
        if self.auto:
            return auto_cells
        cells: list[DraftSettings] = []
        for source, n_max, n_min, p_min in itertools.product(
            self.sources, self.draft_max, self.draft_min, self.p_min
        ):
            if n_min > n_max:
                continue
            if source is DraftSource.NGRAM:
                p_min = 0.0
            cell = replace(
                base, source=source, n_max=n_max, n_min=n_min, p_min=p_min, adaptive=False
            )
            if cell not in cells:
                cells.append(cell)
        if not cells:
            raise ConfigError("no valid cell: every draft-min is above every draft-max")
        return cells + auto_cells if self.also_auto else cells


@dataclass
class CellResult:
    """One cell's measurements (or the plain baseline's).

    ``outputs`` holds each prompt's answer (token ids) from the first repeat, for
    checking greedy exactness and reproducibility.
    """

    drafting: DraftSettings
    speeds: list[float] = field(default_factory=list)
    acceptances: list[float] = field(default_factory=list)
    mean_lengths: list[float] = field(default_factory=list)
    outputs: list[list[int]] = field(default_factory=list)

    @property
    def decode_tokens_per_second(self) -> float:
        return statistics.median(self.speeds) if self.speeds else 0.0

    @property
    def acceptance(self) -> float:
        return statistics.median(self.acceptances) if self.acceptances else 0.0

    @property
    def mean_accepted_length(self) -> float:
        return statistics.median(self.mean_lengths) if self.mean_lengths else 0.0

    def add_pass(self, results: Sequence[GenerationResult]) -> None:
        """One repeat: every prompt's answer."""
        tokens = sum(result.stats.n_predict for result in results)
        decode_ms = sum(result.stats.decode_ms for result in results)
        drafted = sum(result.stats.n_drafted for result in results)
        accepted = sum(result.stats.n_accept for result in results)
        steps = sum(result.stats.steps_with_draft for result in results)
        lengths = sum(
            length * count
            for result in results
            for length, count in enumerate(result.stats.accepted_length_histogram)
        )
        self.speeds.append(tokens / (decode_ms / 1000) if decode_ms > 0 else 0.0)
        self.acceptances.append(accepted / drafted if drafted else 0.0)
        self.mean_lengths.append(lengths / steps if steps else 0.0)
        if len(self.speeds) == 1:
            self.outputs = [result.token_ids for result in results]

    def drop_last_pass(self) -> None:
        """Forget the last pass (one still under way, refreshed or abandoned)."""
        for values in (self.speeds, self.acceptances, self.mean_lengths):
            values.pop()


def settings_label(drafting: DraftSettings) -> str:
    """A short name of a cell's settings, e.g. "model max=8 min=0 p=0.5" or "model auto"."""
    if drafting.source is DraftSource.NONE:
        return "plain"
    if drafting.adaptive:
        return f"{drafting.source.value} auto"
    text = f"{drafting.source.value} max={drafting.n_max} min={drafting.n_min}"
    return text if drafting.source is DraftSource.NGRAM else f"{text} p={drafting.p_min:g}"


def drafting_to_dict(drafting: DraftSettings) -> dict[str, Any]:
    return {
        "source": drafting.source.value,
        "draft_max": "auto" if drafting.adaptive else drafting.n_max,
        "draft_min": drafting.n_min,
        "p_min": drafting.p_min,
        "verification": drafting.verification.value,
    }


def drafting_from_dict(data: dict[str, Any]) -> DraftSettings:
    auto = data.get("draft_max") == "auto"
    return DraftSettings(
        source=DraftSource(data["source"]),
        n_max=AUTO_DRAFT_MAX if auto else int(data["draft_max"]),
        n_min=int(data.get("draft_min", 0)),
        p_min=float(data.get("p_min", 0.0)),
        verification=Verification(data.get("verification", Verification.SPECULATIVE.value)),
        adaptive=auto,
    )


@dataclass
class SweepResult:
    """A sweep's cells against its baseline; ``partial`` when it was cancelled."""

    prompt_set: str
    n_predict: int
    repeats: int
    temperature: float
    baseline: CellResult
    cells: list[CellResult] = field(default_factory=list)
    planned_cells: int = 0
    partial: bool = False
    target: str = ""
    draft: str = ""
    # While the first round runs, and when it was cancelled: how many of the set's
    # prompts every cell has answered (None: all of them, in every round counted).
    prompts_measured: int | None = None
    prompt_count: int = 0
    # True while run_sweep is measuring (the numbers are the passes so far).
    running: bool = False

    def speedup(self, cell: CellResult) -> float:
        base = self.baseline.decode_tokens_per_second
        return cell.decode_tokens_per_second / base if base else 0.0

    def absorb(self, other: SweepResult) -> None:
        """Add the cells of a later run on the same prompts, and its plain passes to the
        baseline (whose median then covers both runs).

        A run cancelled in its first round measured its cells on only some of the
        prompts, which compares with nothing here: only its planned cells count (as
        not measured), and the result becomes partial.
        """
        if other.prompts_measured is None:
            self.cells.extend(other.cells)
            self.baseline.speeds.extend(other.baseline.speeds)
        self.planned_cells += other.planned_cells
        self.partial = self.partial or other.partial

    def identical_to_plain(self, cell: CellResult) -> bool:
        return bool(cell.outputs) and cell.outputs == self.baseline.outputs

    def best(self, fixed_only: bool = False) -> CellResult | None:
        """The fastest finished cell (``fixed_only``: of those with a fixed length),
        whether or not it beat plain decoding: see ``winner`` for a recommendation."""
        cells = [c for c in self.cells if not (fixed_only and c.drafting.adaptive)]
        return max(cells, key=lambda cell: cell.decode_tokens_per_second, default=None)

    def winner(self, fixed_only: bool = False) -> CellResult | None:
        """The fastest cell when it is faster than plain decoding, else None: the
        setting to recommend (plain decoding is, when no cell beat it)."""
        best = self.best(fixed_only)
        return best if best is not None and self.speedup(best) > 1.0 else None

    def no_winner(self) -> str:
        """Why no cell is recommended, with the fastest one's numbers."""
        best = self.best()
        if best is None:
            return "no draft setting was measured"
        return (
            f"no draft setting beat plain decoding on this pair; plain is fastest "
            f"(the fastest setting, {settings_label(best.drafting)}, ran at "
            f"{self.speedup(best):.2f}x plain)"
        )

    def _cells_short_of_repeats(self) -> int:
        return sum(1 for cell in self.cells if len(cell.speeds) < self.repeats)

    @property
    def complete(self) -> bool:
        """Every planned cell measured as many times as asked (not while running)."""
        return (
            not self.partial
            and not self.running
            and len(self.cells) == self.planned_cells
            and self._cells_short_of_repeats() == 0
        )

    def _rounds_done(self) -> int | None:
        """The passes every planned cell has, when they all have the same number
        (sweeps measured prompt by prompt); None otherwise (older saved sweeps)."""
        passes = {len(cell.speeds) for cell in self.cells}
        if self.cells and len(self.cells) == self.planned_cells and len(passes) == 1:
            return passes.pop()
        return None

    def how_far(self) -> str:
        """How far a cancelled sweep got, in a few words ("2 of 4 prompts")."""
        if not self.cells:
            return "no cells"
        if self.prompts_measured is not None:
            return f"{self.prompts_measured} of {self.prompt_count} prompts"
        rounds = self._rounds_done()
        if rounds is not None:
            return f"{rounds} of {self.repeats} rounds"
        # Sweeps saved before cells were measured prompt by prompt.
        return f"{len(self.cells)} of {self.planned_cells} cells"

    def describe_partial(self) -> str:
        """What a cancelled sweep holds, in words."""
        if not self.cells:
            return "cancelled before every cell had answered the first prompt"
        if self.prompts_measured is not None:
            return (
                f"cancelled in the first round after {self.how_far()}; "
                "every cell is measured on those prompts"
            )
        rounds = self._rounds_done()
        if rounds is not None:
            times = "once" if rounds == 1 else f"{rounds} times"
            return f"cancelled after {self.how_far()}; every cell is measured {times}"
        short = self._cells_short_of_repeats()
        text = f"cancelled with {self.how_far()} measured"
        if short:
            text += f", {short} of them fewer than {self.repeats} times"
        return text

    def describe_running(self) -> str:
        """Where a running sweep is, in words (the cells' numbers are the passes so far)."""
        if self.prompts_measured is not None:
            return (
                f"every cell has answered {self.prompts_measured} of {self.prompt_count} "
                f"prompts of round 1 of {self.repeats}"
            )
        return f"round {len(self.baseline.speeds)} of {self.repeats}"

    def cell_dict(self, cell: CellResult) -> dict[str, Any]:
        return {
            "settings": drafting_to_dict(cell.drafting),
            "decode_tokens_per_second": cell.decode_tokens_per_second,
            "speedup": self.speedup(cell),
            "acceptance": cell.acceptance,
            "mean_accepted_length": cell.mean_accepted_length,
            "identical_to_plain": self.identical_to_plain(cell),
            "speeds": list(cell.speeds),
        }

    def to_dict(self) -> dict[str, Any]:
        best = self.best()
        return {
            "target": self.target,
            "draft": self.draft,
            "prompt_set": self.prompt_set,
            "n_predict": self.n_predict,
            "repeats": self.repeats,
            "temperature": self.temperature,
            "partial": self.partial,
            "planned_cells": self.planned_cells,
            "prompts_measured": self.prompts_measured,
            "prompt_count": self.prompt_count,
            "baseline": {
                "decode_tokens_per_second": self.baseline.decode_tokens_per_second,
                "speeds": list(self.baseline.speeds),
            },
            "best": self.cells.index(best) if best is not None else None,
            "best_beats_plain": best is not None and self.speedup(best) > 1.0,
            "results": [self.cell_dict(cell) for cell in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepResult:
        """A saved sweep (outputs are not saved: they are for checks during the run)."""
        try:
            baseline = CellResult(
                DraftSettings(source=DraftSource.NONE),
                speeds=[float(s) for s in data["baseline"]["speeds"]],
            )
            cells = []
            for item in data["results"]:
                cell = CellResult(drafting_from_dict(item["settings"]))
                cell.speeds = [float(s) for s in item["speeds"]]
                cell.acceptances = [float(item["acceptance"])]
                cell.mean_lengths = [float(item.get("mean_accepted_length", 0.0))]
                cells.append(cell)
            return cls(
                prompt_set=str(data["prompt_set"]),
                n_predict=int(data["n_predict"]),
                repeats=int(data["repeats"]),
                temperature=float(data["temperature"]),
                baseline=baseline,
                cells=cells,
                planned_cells=int(data.get("planned_cells", len(cells))),
                partial=bool(data.get("partial", False)),
                target=str(data.get("target", "")),
                draft=str(data.get("draft", "")),
                prompts_measured=(
                    None if data.get("prompts_measured") is None else int(data["prompts_measured"])
                ),
                prompt_count=int(data.get("prompt_count", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a saved sweep: {exc!r} missing or invalid") from exc


@dataclass(frozen=True)
class WarmUp:
    """An adaptive cell answering the set before the first round (not measured):
    which cell, and which answer of at most how many is running. It stops early once
    the cell's record of recent drafts holds this set's tokens only."""

    cell: str
    answer: int
    at_most: int

    def describe(self) -> str:
        return (
            f"warming up {self.cell} on the set: answer {self.answer} of at most "
            f"{self.at_most}, not measured"
        )


@dataclass(frozen=True)
class SweepProgress:
    """Where a running sweep is: answers done of all, and whether every cell's
    numbers were just refreshed (after each prompt that every cell has answered).
    Before the first round, ``warm_up`` says which adaptive warm-up answer runs
    (``done`` is still 0 then: warm-up answers are not among the measured ones)."""

    done: int
    total: int
    result: SweepResult
    cells_refreshed: bool = False
    warm_up: WarmUp | None = None

    def describe(self) -> str:
        """One line for a terminal or a status bar."""
        if self.warm_up is not None:
            return self.warm_up.describe()
        return f"{self.done}/{self.total} answers"


class SweepControl:
    """Cancels a running sweep from outside (a button, Ctrl+C)."""

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Cancelled(Exception):
    pass


def _seeded(settings: GenerationSettings, repeat: int, prompt_index: int) -> GenerationSettings:
    """Every cell samples prompt i of repeat r with the same seed."""
    if settings.sampling.greedy:
        return settings
    base = SWEEP_SEED if settings.sampling.seed == RANDOM_SEED else settings.sampling.seed
    seed = base + 1000 * repeat + prompt_index
    return replace(settings, sampling=replace(settings.sampling, seed=seed))


def _adaptive_modes(cells: Sequence[CellResult]) -> list[DraftSettings]:
    """The adaptive cells, one per learning memory (the engine keeps one per mode)."""
    modes: list[DraftSettings] = []
    for cell in cells:
        if cell.drafting.adaptive and cell.drafting.n_max > 0 and cell.drafting not in modes:
            modes.append(cell.drafting)
    return modes


async def _warm_up_adaptive(
    runner: AnswerRunner,
    prompts: Sequence[list[int]],
    settings: GenerationSettings,
    repeats: int,
    control: SweepControl,
    on_answer: Callable[[WarmUp], None],
) -> None:
    """Answers to the set's prompts, from the last one back, until the adaptive
    memory's record of recent drafts holds this set's tokens only (or every prompt
    was answered once). With one answer of 96 tokens, half the 192-token record
    still held the set swept before: the code set's first round, after the chat set,
    drafted 5-9 tokens a step where every 16-token draft was kept, and read 0.96 of
    fixed 16. ``on_answer`` hears of each answer as it starts."""
    recorded = 0
    for number, index in enumerate(reversed(range(len(prompts))), start=1):
        if control.cancelled:
            raise _Cancelled
        on_answer(WarmUp(settings_label(settings.drafting), number, len(prompts)))
        # A seed no round uses: the warm-up is no one's measured answer.
        answer = await runner.answer(prompts[index], _seeded(settings, repeats, index))
        if answer.stop_reason is StopReason.CANCELLED:
            raise _Cancelled
        # What the record keeps of an answer: each drafting step's kept tokens and
        # the target's one (plain steps, such as those while drafting is off, add
        # nothing).
        recorded += answer.stats.n_accept + answer.stats.steps_with_draft
        if recorded >= RECORD_TOKENS:
            return
        # Let the event loop deliver a cancel between answers.
        await asyncio.sleep(0)


async def run_sweep(
    runner: AnswerRunner,
    prompt_set: PromptSet,
    grid: SweepGrid,
    settings: GenerationSettings,
    repeats: int = 1,
    on_progress: Callable[[SweepProgress], None] | None = None,
    control: SweepControl | None = None,
) -> SweepResult:
    """Measure every cell of ``grid`` on ``prompt_set`` (see the module docstring).

    ``settings`` gives n_predict, the sampling and the verification; each cell
    replaces the draft length settings. Cancelling through ``control`` stops
    within the running answer and returns what every cell measured on the same
    prompts, marked partial.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    control = control or SweepControl()
    cells = [CellResult(drafting) for drafting in grid.cells(settings.drafting)]
    result = SweepResult(
        prompt_set=prompt_set.name,
        n_predict=settings.n_predict,
        repeats=repeats,
        temperature=settings.sampling.temperature,
        baseline=CellResult(plain_settings(settings).drafting),
        planned_cells=len(cells),
        prompt_count=len(prompt_set.prompts),
    )
    # Plain decoding takes its turns like one more cell.
    measured = [result.baseline, *cells]
    prompts = [await runner.tokenize_chat(messages) for messages in prompt_set.prompts]
    total = len(measured) * repeats * len(prompts)
    done = 0
    # Prompts every cell has answered in the round under way; from the first one on,
    # each cell holds a pass of the round so far, refreshed after each prompt.
    prompts_done = 0

    def report(refreshed: bool = False, warm_up: WarmUp | None = None) -> None:
        if on_progress is not None:
            on_progress(SweepProgress(done, total, result, refreshed, warm_up))

    result.running = True
    try:
        await runner.answer(
            prompts[0], replace(plain_settings(settings), n_predict=_WARM_UP_TOKENS)
        )
        # An adaptive cell learns as it goes: each answer starts from what the last
        # one of its mode learned (core/engine/draft_length.py). Answers to this
        # set first, and every round of it starts where the later rounds do, rather
        # than from whatever the engine ran before the sweep (the first code answer
        # after the chat set drafted chat's 5-token runs where the code set's ran to
        # 16, and read 0.87 of fixed 16).
        for drafting in _adaptive_modes(cells):
            await _warm_up_adaptive(
                runner,
                prompts,
                replace(settings, drafting=drafting),
                repeats,
                control,
                lambda warm_up: report(warm_up=warm_up),
            )
        report()
        for repeat in range(repeats):
            answers: list[list[GenerationResult]] = [[] for _ in measured]
            prompts_done = 0
            for index, prompt in enumerate(prompts):
                shift = (repeat + index) % len(measured)
                for slot in range(len(measured)):
                    which = (slot + shift) % len(measured)
                    if control.cancelled:
                        raise _Cancelled
                    drafting = measured[which].drafting
                    answer = await runner.answer(
                        prompt, _seeded(replace(settings, drafting=drafting), repeat, index)
                    )
                    if answer.stop_reason is StopReason.CANCELLED:
                        raise _Cancelled
                    answers[which].append(answer)
                    done += 1
                    report()
                    # Let the event loop deliver a cancel between answers.
                    await asyncio.sleep(0)
                for cell, its_answers in zip(measured, answers, strict=True):
                    if prompts_done:
                        cell.drop_last_pass()
                    cell.add_pass(its_answers)
                prompts_done += 1
                result.cells = cells
                if not repeat:
                    result.prompts_measured = prompts_done
                report(True)
            result.prompts_measured = None
    except _Cancelled:
        result.partial = True
        if prompts_done and len(result.baseline.speeds) > 1:
            # A later round cut short: keep the rounds every cell finished.
            for cell in measured:
                cell.drop_last_pass()
    finally:
        result.running = False
    return result
