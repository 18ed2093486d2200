"""The guard: draft lengths follow measured gains, drafting stops while it loses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
)
from core.engine.draft_confidence import ConfidenceCutoff
from core.engine.draft_hindsight import DraftRecord
from core.engine.draft_length import (
    DraftLengthController,
    DraftLengthMemory,
    typical_plain_step_ms,
)
from core.engine.drafting import Drafter, ModelDrafter
from core.engine.verification import Draft
from tests.conftest import TinyModels

PLAIN_MS = 10.0


def simulate(
    controller: DraftLengthController,
    steps: int,
    accept: float,
    draft_token_ms: float,
    row_ms: float,
    seed: int = 0,
    plain_ms: float = PLAIN_MS,
    kept_whole: float = 0.0,
    overhead_ms: float = 0.0,
    speedup: list[float] | None = None,
) -> list[int]:
    """Drive the controller with synthetic steps: each drafted token is kept with
    probability ``accept`` (until the first rejection), and with ``kept_whole`` the
    whole draft is (acceptance in runs, as when sampling from a good draft);
    a drafted step's verification costs ``overhead_ms`` more than its rows;
    returns the lengths asked (and appends the speed-up over plain decoding that
    those steps reached to ``speedup``)."""
    rng = np.random.default_rng(seed)
    lengths = []
    emitted, spent_ms = 0, 0.0
    for _ in range(steps):
        k = controller.next_length()
        lengths.append(k)
        accepted = 0
        if k and rng.random() < kept_whole:
            accepted = k
        while accepted < k and rng.random() < accept:
            accepted += 1
        extra_ms = overhead_ms + k * row_ms if k else 0.0
        controller.record(k, accepted, k * draft_token_ms, plain_ms + extra_ms)
        emitted += accepted + 1
        spent_ms += k * draft_token_ms + plain_ms + extra_ms
    if speedup is not None:
        speedup.append(emitted * plain_ms / spent_ms)
    return lengths


def test_first_steps_are_plain_then_a_probe() -> None:
    controller = DraftLengthController(16)
    # The first decodes of an answer are often slow: a few plain steps set the
    # baseline, and a fast one counts more than a slow one.
    for verify_ms in (2 * PLAIN_MS, PLAIN_MS, PLAIN_MS):
        assert controller.next_length() == 0
        controller.record(0, 0, 0.0, verify_ms)
    assert controller.plain_ms is not None and controller.plain_ms < 1.3 * PLAIN_MS
    assert controller.next_length() == 8


def test_useless_draft_switches_drafting_off_and_probes_rarely() -> None:
    controller = DraftLengthController(16)
    lengths = simulate(controller, 300, accept=0.0, draft_token_ms=3.0, row_ms=0.5)
    assert not controller.drafting
    assert controller.times_switched_off == 1
    drafted_steps = [i for i, k in enumerate(lengths) if k]
    assert drafted_steps[:2] == [3, 4] or drafted_steps[:1] == [3]
    # After switching off only probes draft, ever more rarely (gaps 32, 64, 128).
    assert len(drafted_steps) <= 6
    assert sum(lengths) <= 16


def test_free_but_useless_draft_is_switched_off_too() -> None:
    # An n-gram draft costs nothing to make, but each extra verified row does.
    controller = DraftLengthController(8)
    simulate(controller, 100, accept=0.0, draft_token_ms=0.0, row_ms=0.3)
    assert not controller.drafting


def test_good_draft_drafts_long() -> None:
    controller = DraftLengthController(16)
    lengths = simulate(controller, 60, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    assert controller.drafting
    assert np.median(lengths[10:]) >= 6


# The demo pair on one CPU thread: a plain step 30 ms, a drafted token 12 ms, a
# verified row 5 ms; drafts only pay when they are long and mostly kept.
DEMO_PLAIN_MS, DEMO_DRAFT_MS, DEMO_ROW_MS = 30.0, 12.0, 5.0


@pytest.mark.parametrize("seed", range(5))
def test_sampling_draft_that_pays_keeps_drafting_near_the_best_fixed_length(seed: int) -> None:
    # Temperature 0.8 on the demo pair: 70% of the drafts are kept whole, the rest
    # fail early. Positions beyond the recent drafts must not look hopeless after
    # a few early rejections, or the lengths stay short and the gain is lost; nor
    # may the runs lure it into lengths longer than pay.
    def run(controller: DraftLengthController) -> tuple[list[int], float]:
        speedup: list[float] = []
        lengths = simulate(
            controller,
            200,
            accept=0.8,
            kept_whole=0.7,
            seed=seed,
            plain_ms=DEMO_PLAIN_MS,
            draft_token_ms=DEMO_DRAFT_MS,
            row_ms=DEMO_ROW_MS,
            speedup=speedup,
        )
        return lengths, speedup[0]

    controller = DraftLengthController(16)
    lengths, adaptive = run(controller)
    best_fixed = max(run(DraftLengthController(n, adaptive=False))[1] for n in (2, 4, 8, 16))
    assert controller.drafting
    assert controller.times_switched_off == 0
    assert np.median(lengths[20:]) >= 2
    assert adaptive >= 0.95 * best_fixed, (adaptive, best_fixed)


def test_lengths_shrink_after_a_cluster_of_rejections_and_grow_back_as_it_ages() -> None:
    controller = DraftLengthController(16)
    for _ in range(3):
        controller.record(0, 0, 0.0, DEMO_PLAIN_MS)

    def step(accepted: int | None = None) -> int:
        k = controller.next_length()
        kept = k if accepted is None else min(accepted, k)
        controller.record(k, kept, k * DEMO_DRAFT_MS, DEMO_PLAIN_MS + k * DEMO_ROW_MS)
        return k

    grown = [step() for _ in range(5)]
    assert max(grown) == 16
    # Three unlucky steps in a row: rejections come in clusters, and at these costs
    # (a drafted token 57% of a plain step) a long draft into the next cluster
    # costs more than its run wins, so drafts stay short while the cluster is in
    # the record, and drafting stays on.
    for accepted in (0, 1, 1):
        step(accepted)
    assert controller.drafting
    shortened = [k for k in (step() for _ in range(10)) if k]
    assert 2 <= max(shortened) <= 8, shortened
    # Full drafts age the cluster out of the record and the length returns to 16.
    regrown = [step() for _ in range(50)]
    assert regrown[-10:].count(16) >= 8, regrown


def test_slow_first_drafts_do_not_switch_off_a_draft_that_pays() -> None:
    # The draft's weights went cold while the baseline was measured: its first two
    # drafts cost three times the usual. The draft keeps every token.
    controller = DraftLengthController(16)
    for _ in range(3):
        controller.record(0, 0, 0.0, DEMO_PLAIN_MS)
    for slowness in (3.0, 3.0, 1.0, 1.0, 1.0, 1.0):
        k = controller.next_length()
        controller.record(k, k, slowness * k * DEMO_DRAFT_MS, DEMO_PLAIN_MS + k * DEMO_ROW_MS)
    assert controller.drafting
    assert controller.next_length() == 16


def test_weak_draft_at_demo_costs_is_switched_off() -> None:
    # 60% of drafted tokens kept: at these costs even one drafted token barely
    # breaks even, so drafting stops after a few short steps.
    controller = DraftLengthController(16)
    lengths = simulate(
        controller, 256, accept=0.6, plain_ms=DEMO_PLAIN_MS, draft_token_ms=15.0, row_ms=DEMO_ROW_MS
    )
    assert not controller.drafting
    # At most the judging period's steps (a pair that pays may start unluckily) and
    # the losing run that confirms the verdict.
    drafted_steps = sum(1 for k in lengths if k)
    assert drafted_steps <= 8 + 5  # _LENIENT_OPENING_STEPS, then _LOSING_STEPS
    # The first probe, then short drafts: no longer than the run the draft last
    # had kept (60% acceptance keeps runs of about 1.5 tokens) or the shortest.
    assert sum(lengths) <= 8 + 3 * (drafted_steps - 1)


@pytest.mark.parametrize("seed", range(4))
def test_slow_first_steps_do_not_flatter_a_weak_draft(seed: int) -> None:
    # The answer's first decodes are slow (45, 40, 38 ms, then 30), and a drafted
    # step's verification costs a fixed 15 ms more than its rows, so no
    # verification is ever faster than the first plain steps: only plain steps
    # taken while drafting show that the baseline is 30 ms, at which this draft
    # (65% of its tokens kept, 14.5 ms each) loses.
    controller = DraftLengthController(16)
    rng = np.random.default_rng(seed)
    first_steps = [45.0, 40.0, 38.0]
    lengths = []
    for _ in range(256):
        k = controller.next_length()
        lengths.append(k)
        accepted = 0
        while accepted < k and rng.random() < 0.65:
            accepted += 1
        plain_ms = first_steps.pop(0) if first_steps else 30.0
        controller.record(k, accepted, k * 14.5, plain_ms + (15.0 + 5.0 * k if k else 0.0))
    assert controller.plain_ms == pytest.approx(30.0)
    assert not controller.drafting
    assert sum(1 for k in lengths if k) <= 24


def test_cost_model_is_calibrated_by_measured_step_times() -> None:
    # Costs linear in the draft length: the model's step times are right.
    linear = DraftLengthController(16)
    simulate(linear, 60, accept=0.9, draft_token_ms=2.0, row_ms=0.5)
    assert linear.calibration() == pytest.approx(1.0, abs=0.02)
    # A drafted step costs a fixed 8 ms on top (a 10 ms plain step): the model,
    # fitted per token, underestimates short steps, and the calibration says so
    # (over the first ten drafting steps, before any verdict on drafting).
    overhead = DraftLengthController(16)
    simulate(overhead, 13, accept=0.7, draft_token_ms=2.0, row_ms=0.5, overhead_ms=8.0)
    assert overhead.calibration() > 1.1


def test_mediocre_draft_drafts_short() -> None:
    controller = DraftLengthController(16)
    lengths = simulate(controller, 200, accept=0.6, draft_token_ms=2.0, row_ms=0.3)
    assert controller.drafting
    assert 2 <= np.median(lengths[20:]) <= 4
    # Never a 1-token draft: it pays a drafting step's fixed cost for one token at
    # most, and measures nothing about the draft's later positions.
    assert 1 not in lengths


def test_costly_draft_is_switched_off_despite_good_acceptance() -> None:
    # A draft as slow as its target never pays, however often it is right.
    controller = DraftLengthController(16)
    simulate(controller, 50, accept=0.9, draft_token_ms=PLAIN_MS, row_ms=1.0)
    assert not controller.drafting


def test_cheap_draft_resumes_when_a_probe_succeeds() -> None:
    # An n-gram-like draft: nothing to catch up on, so probing is affordable.
    controller = DraftLengthController(8)
    simulate(controller, 40, accept=0.0, draft_token_ms=0.05, row_ms=0.5)
    assert not controller.drafting
    simulate(controller, 80, accept=1.0, draft_token_ms=0.05, row_ms=0.5)
    assert controller.drafting
    assert controller.next_length() >= 4


def test_probes_of_a_costly_draft_stay_within_their_budget() -> None:
    # A model draft must decode every token it sat out before it can draft again
    # (here 2 ms a token, a fifth of a plain step), more than the 3% of the answer's
    # time probes may cost: once off, it stays off.
    costly = DraftLengthController(16)
    lengths = simulate(costly, 1000, accept=0.0, draft_token_ms=4.0, row_ms=0.5)
    drafted = [i for i, k in enumerate(lengths) if k]
    assert drafted == list(range(3, 3 + len(drafted))) and len(drafted) <= 6
    # A draft with nothing to catch up on (n-gram lookup) is probed now and then.
    cheap = DraftLengthController(16)
    lengths = simulate(cheap, 1000, accept=0.0, draft_token_ms=0.0, row_ms=0.5)
    assert not cheap.drafting
    probes = [i for i, k in enumerate(lengths) if k and i > 40]
    assert 3 <= len(probes) <= 8


def test_fixed_length_and_draft_min() -> None:
    fixed = DraftLengthController(6, adaptive=False)
    assert simulate(fixed, 20, accept=0.0, draft_token_ms=5.0, row_ms=1.0) == [6] * 20
    with_min = DraftLengthController(8, n_min=3)
    lengths = simulate(with_min, 50, accept=0.5, draft_token_ms=1.0, row_ms=0.1)
    assert all(k == 0 or k >= 3 for k in lengths)
    assert DraftLengthController(0).next_length() == 0


# -- the guard in the engine -------------------------------------------------------


class SameTokenDrafter:
    """A draft that always proposes the same token, paying the draft model's real
    cost for it: the worst case the guard has to catch."""

    def __init__(self, inner: ModelDrafter, token: int) -> None:
        self._inner = inner
        self._token = token

    def propose(
        self, history: list[int], max_tokens: int, cutoff: ConfidenceCutoff | None = None
    ) -> Draft:
        draft = self._inner.propose(history, max_tokens, cutoff)
        tokens = [self._token] * len(draft)
        return Draft(tokens, [0.5] * len(tokens))

    def rollback(self, history_without_last: list[int]) -> None:
        self._inner.rollback(history_without_last)

    def catch_up(self, history: list[int]) -> None:
        self._inner.catch_up(history)


def draft_useless_tokens(engine: SpeculativeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``engine``'s model draft propose one token the target never picks."""
    useless = engine.tokenize("zzz")[-1]
    make_drafter = engine._make_drafter

    def same_token_drafter(*args: object) -> Drafter:
        inner = make_drafter(*args)  # type: ignore[arg-type]
        assert isinstance(inner, ModelDrafter)
        return SameTokenDrafter(inner, useless)

    monkeypatch.setattr(engine, "_make_drafter", same_token_drafter)


def one_thread_engine(tiny_models: TinyModels) -> SpeculativeEngine:
    """The tiny pair on one thread: two threads on a loaded 2-core machine make tiny
    decodes crawl. A fresh one has learned nothing yet (the module's shared engine
    may have learned from other tests)."""
    return SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=1),
        ModelConfig(tiny_models.draft, n_threads=1),
    )


@pytest.fixture(scope="module")
def engine(tiny_models: TinyModels) -> Iterator[SpeculativeEngine]:
    with one_thread_engine(tiny_models) as engine:
        yield engine


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_engine_stops_drafting_with_a_useless_draft(
    engine: SpeculativeEngine, monkeypatch: pytest.MonkeyPatch, temperature: float
) -> None:
    draft_useless_tokens(engine, monkeypatch)
    prompt = engine.tokenize("the cat and the dog")
    settings = GenerationSettings(
        n_predict=200,
        sampling=SamplingSettings(temperature=temperature, seed=3),
        drafting=DraftSettings(n_max=8),
    )
    events = list(engine.generate(prompt, settings))
    steps = [e for e in events if isinstance(e, StepEvent)]
    drafted = [i for i, step in enumerate(steps) if step.n_drafted]
    assert sum(step.n_accepted for step in steps) <= 2
    # A few losing steps, then only rare probes over the remaining ~190 steps.
    assert drafted and drafted[0] <= 4
    assert len(drafted) <= 7, drafted
    assert sum(step.n_drafted for step in steps) <= 24


def test_step_times_are_fitted_with_the_fixed_overhead_of_a_drafted_step() -> None:
    # A drafted step costs the plain step, a fixed 8 ms, and 2.5 ms per drafted
    # token (2 for the draft, 0.5 for its row): the fitted line finds both parts,
    # which a per-token model (8 ms spread over the tokens) cannot.
    controller = DraftLengthController(16)
    simulate(controller, 80, accept=0.8, draft_token_ms=2.0, row_ms=0.5, overhead_ms=8.0)
    fit = controller.step_cost_fit()
    assert fit is not None
    intercept, slope = fit
    assert intercept == pytest.approx(PLAIN_MS + 8.0, abs=0.5)
    assert slope == pytest.approx(2.5, abs=0.2)
    lengths = np.array([1, 8])
    assert controller.expected_step_ms(lengths) == pytest.approx(intercept + lengths * slope)


def _fully_kept_answers(timed_in_full: bool) -> DraftLengthController:
    """Answers of mostly 16-token drafts, all kept, each ending in a 5-token draft
    that stopped at the draft's end of text: one draft decode cheaper than the
    line, since nothing follows it to catch up on."""
    controller = DraftLengthController(16, plain_ms_hint=DEMO_PLAIN_MS)
    for _ in range(6):
        for k in (16, 16, 12, 16, 5):
            controller.next_length()
            last = k == 5
            controller.record(
                k,
                k,
                (k - 1 if last else k) * DEMO_DRAFT_MS,
                DEMO_PLAIN_MS + 10.0 + (k + 1) * DEMO_ROW_MS,
                timed_in_full=not last or timed_in_full,
            )
    return controller


def test_steps_of_nearly_one_length_do_not_price_long_drafts_above_their_tokens() -> None:
    # A cold answer's first steps on the demo pair (2 CPU cores), code text: every
    # drafted token kept, drafts of 7-8 tokens. Pairs of steps one token apart read
    # slopes far above what a token costs (11-13 ms against 8.7), and priced that
    # steep, 16-token drafts looked dear: the length stayed at 8 for nine steps
    # where fixed 16 kept every token.
    controller = DraftLengthController(16, plain_ms_hint=19.3)
    steps = [(8, 8, 68.0, 40.0), (8, 7, 60.5, 42.5), (7, 7, 53.9, 36.0)]
    steps += [(8, 8, 62.8, 38.1), (8, 8, 61.8, 37.1), (8, 8, 61.3, 37.1)]
    for n_drafted, n_accepted, draft_ms, verify_ms in steps:
        controller.next_length()
        controller.record(n_drafted, n_accepted, draft_ms, verify_ms)
    fit = controller.step_cost_fit()
    assert fit is not None and controller.draft_token_ms is not None
    # Spread over its tokens, a step's fixed costs make the per-token model's cost
    # the most one more token can cost.
    assert fit[1] <= controller.draft_token_ms + (controller.row_ms or 0.0)
    # (With the slope up to 1.5 times that model's, 9.)
    assert controller.next_length() >= 12


def _losing_steps_in_a_slow_stretch(plain_ms: float, slow: float) -> DraftLengthController:
    """Drafts of 3 kept tokens, every step ``slow`` times what it costs at the
    plain time the controller knows, until it asks for a plain step while
    drafting is still on (the first after its early remeasures)."""
    controller = DraftLengthController(16, plain_ms_hint=plain_ms)
    drafted_steps = 0
    for _ in range(60):
        length = controller.next_length()
        # Past the early remeasures (after 4 and 8 drafting steps).
        if length == 0 and controller.drafting and drafted_steps > 8:
            return controller
        if length == 0:
            controller.record(0, 0, 0.0, plain_ms * slow)
            continue
        draft_ms, verify_ms = 4.0 + 7.0 * length, plain_ms + 4.0 + 2.5 * length
        controller.record(length, min(length, 3), draft_ms * slow, verify_ms * slow)
        drafted_steps += 1
    raise AssertionError("drafting never looked like losing")


@pytest.mark.parametrize("plain_now_ms, switched_off", [(26.0, False), (20.0, True)])
def test_drafting_is_switched_off_only_when_a_plain_step_timed_now_confirms_it_loses(
    plain_now_ms: float, switched_off: bool
) -> None:
    # The machine runs 30% slow (another process): the drafting steps look like
    # losing against the plain time measured before. A plain step timed now says
    # whether they really do; a plain step is what switching off takes anyway.
    controller = _losing_steps_in_a_slow_stretch(20.0, slow=1.3)
    assert controller.drafting
    controller.record(0, 0, 0.0, plain_now_ms)
    assert controller.drafting is not switched_off
    assert controller.times_switched_off == int(switched_off)
    assert (controller.next_length() > 0) is not switched_off


def test_an_answers_last_step_does_not_skew_the_fitted_step_cost() -> None:
    # With every other step the same length, the cheap last steps alone set the
    # fitted slope when they are counted.
    skewed = _fully_kept_answers(timed_in_full=True).step_cost_fit()
    controller = _fully_kept_answers(timed_in_full=False)
    fit = controller.step_cost_fit()
    assert skewed is not None and fit is not None
    per_token = DEMO_DRAFT_MS + DEMO_ROW_MS
    # The skew shows as a steep slope, or where the slope is capped at the
    # per-token model's, as an intercept too high.
    assert skewed[1] > per_token + 0.5 or skewed[0] > fit[0] + 5.0
    assert fit == pytest.approx((DEMO_PLAIN_MS + 10.0 + DEMO_ROW_MS, per_token))
    assert controller.draft_token_ms == pytest.approx(DEMO_DRAFT_MS)
    assert controller.next_length() == 16


def test_a_cold_start_follows_the_runs_the_first_drafts_keep() -> None:
    # The first decodes of an answer are slow, and spread over its tokens a drafting
    # step's fixed cost makes 2-token drafts look cheapest; over the first drafting
    # steps the draft's own runs set the length instead.
    controller = DraftLengthController(16, plain_ms_hint=DEMO_PLAIN_MS)
    asked = []
    for slowness, kept in ((2.0, 8), (1.0, 7), (1.0, None), (1.0, None)):
        k = controller.next_length()
        asked.append(k)
        controller.record(
            k,
            k if kept is None else min(kept, k),
            slowness * k * DEMO_DRAFT_MS,
            DEMO_PLAIN_MS + 10.0 + k * DEMO_ROW_MS,
        )
    assert asked[:2] == [8, 8]  # the first probe, fully kept: at least as long again
    assert asked[2] >= 7  # 7 of 8 kept: at least that run
    assert controller.drafting


# -- the next answer starts where the last one ended --------------------------------


def test_next_answer_of_a_pair_that_pays_drafts_at_once() -> None:
    first = DraftLengthController(16)
    simulate(first, 60, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    memory = first.memory()
    assert memory is not None and memory.drafting
    # Cold, an answer measures the plain baseline first; warm, it drafts the
    # length it had learned from its first step.
    assert DraftLengthController(16).next_length() == 0
    second = DraftLengthController(16, memory=memory)
    assert second.warm_start
    assert second.next_length() >= 6
    lengths = simulate(second, 30, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    assert min(lengths[:3]) >= 6


def test_next_answer_of_a_losing_pair_does_not_lose_again() -> None:
    first = DraftLengthController(16)
    simulate(first, 40, accept=0.0, draft_token_ms=3.0, row_ms=0.5)
    memory = first.memory()
    assert memory is not None and not memory.drafting
    cold = simulate(DraftLengthController(16), 30, accept=0.0, draft_token_ms=3.0, row_ms=0.5)
    assert any(cold)  # a cold start drafts (and loses) before switching off
    warm = simulate(
        DraftLengthController(16, memory=memory), 30, accept=0.0, draft_token_ms=3.0, row_ms=0.5
    )
    # One short probe as the answer starts, then off for the probe gap it had reached.
    assert warm == [2] + [0] * 29


def test_a_draft_switched_off_by_mistake_resumes_in_the_next_answer() -> None:
    first = DraftLengthController(16)
    simulate(first, 40, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    learned = first.memory()
    assert learned is not None
    # As if a bad stretch (another process on the CPU) had switched it off at the end.
    second = DraftLengthController(16, memory=dataclasses.replace(learned, drafting=False))
    lengths = simulate(second, 20, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    # Not a short probe: a trial of the length that was best, judged at break-even.
    assert lengths[0] >= 6 and second.drafting
    assert np.median(lengths[5:]) >= 6


def test_an_answer_after_a_hard_passage_starts_with_a_trial_draft() -> None:
    # Drafting paid, then the answer ended in a hard passage that switched it off.
    first = DraftLengthController(16)
    simulate(first, 40, accept=0.92, draft_token_ms=3.0, row_ms=0.5)
    simulate(first, 12, accept=0.5, draft_token_ms=3.0, row_ms=0.5, seed=1)
    learned = first.memory()
    assert learned is not None
    second = DraftLengthController(16, memory=dataclasses.replace(learned, drafting=False))
    # The passage counts half against the new text, so the expectation stays near
    # break-even: a trial of the length that was best rather than a 2-token probe.
    assert second.best_length()[1] >= 0.9
    lengths = simulate(second, 30, accept=0.92, draft_token_ms=3.0, row_ms=0.5, seed=2)
    assert lengths[0] == learned_best_length(learned) and second.drafting
    assert sum(1 for k in lengths if k) >= 25


def learned_best_length(memory: DraftLengthMemory) -> int:
    """The length the answer that left ``memory`` would draft next."""
    drafting = dataclasses.replace(memory, drafting=True)
    return DraftLengthController(16, memory=drafting).best_length()[0]


def test_memory_carries_over_to_another_draft_max() -> None:
    first = DraftLengthController(16)
    simulate(first, 60, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    memory = first.memory()
    assert memory is not None
    assert 0 < DraftLengthController(4, memory=memory).next_length() <= 4
    longer = DraftLengthController(32, memory=memory)
    assert 0 < longer.next_length() <= 32
    assert len(longer.survival()) == 32


def test_fixed_length_neither_learns_nor_uses_memory() -> None:
    fixed = DraftLengthController(8, adaptive=False)
    simulate(fixed, 20, accept=0.5, draft_token_ms=3.0, row_ms=0.3)
    assert fixed.memory() is None
    learned = DraftLengthController(16)
    simulate(learned, 40, accept=0.0, draft_token_ms=3.0, row_ms=0.5)
    memory = learned.memory()
    assert memory is not None and not memory.drafting
    assert DraftLengthController(8, adaptive=False, memory=memory).next_length() == 8


def test_engine_remembers_a_losing_draft_for_the_next_answer(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    with one_thread_engine(tiny_models) as fresh:
        draft_useless_tokens(fresh, monkeypatch)
        settings = GenerationSettings(
            n_predict=30, sampling=SamplingSettings(temperature=0.0), drafting=DraftSettings()
        )

        def drafted_steps(text: str) -> list[int]:
            events = list(fresh.generate(fresh.tokenize(text), settings))
            steps = [e for e in events if isinstance(e, StepEvent)]
            return [i for i, step in enumerate(steps) if step.n_drafted]

        first = drafted_steps("the cat and the dog")
        assert first and first[0] <= 4  # cold: a baseline, then a draft that loses
        # Warm: one short probe at the start, then still off.
        assert drafted_steps("a dog and a cat") == [0]


def test_a_run_of_fully_kept_drafts_lengthens_them_as_far_as_they_pay() -> None:
    # A cheap draft that is always right: drafts grow to the maximum at once.
    cheap = DraftLengthController(16)
    lengths = simulate(cheap, 12, accept=1.0, draft_token_ms=1.0, row_ms=0.2)
    assert lengths[-3:] == [16, 16, 16], lengths
    # A draft token costing a third of a plain step, 90% of drafted tokens kept: not
    # the longest draft (16 tokens pay 1.3x here, 4-6 tokens 1.7x), and not short.
    costly = DraftLengthController(16)
    lengths = simulate(costly, 80, accept=0.9, draft_token_ms=3.0, row_ms=0.5, seed=3)
    drafted = [k for k in lengths[20:] if k]
    assert 3 <= np.median(drafted) <= 8, drafted


def test_a_draft_record_yields_the_tokens_per_step_its_length_emitted() -> None:
    # For the length that was drafted, the record's yield is what the steps emitted.
    rng = np.random.default_rng(0)
    record = DraftRecord()
    emitted = 0
    for _ in range(60):
        accepted = 0
        while accepted < 2 and rng.random() < 0.65:
            accepted += 1
        record.add_step(2, accepted)
        emitted += accepted + 1
    assert record.tokens_per_step(4)[1] == pytest.approx(emitted / 60, rel=0.05)


def test_a_draft_record_yields_what_its_runs_allow() -> None:
    # Fully kept 4-token drafts: the token after each was never asked for and counts
    # as right as often as the asked ones (always, here), so it reads as one long run.
    kept = DraftRecord()
    for _ in range(30):
        kept.add_step(4, 4)
    assert kept.tokens_per_step(16) == pytest.approx(np.arange(2, 18))
    # A rejection every third token: longer drafts cannot emit more than 3 a step.
    choppy = DraftRecord()
    for _ in range(40):
        choppy.add_step(8, 2)
    yields = choppy.tokens_per_step(16)
    assert yields[1] == pytest.approx(3.0, rel=0.2) and yields.max() <= 3.0 + 1e-9
    # Never more than a step can emit, and never less for a longer draft.
    for record in (kept, choppy):
        yields = record.tokens_per_step(16)
        assert np.all(np.diff(yields) >= -1e-9) and np.all(yields <= np.arange(2, 18) + 1e-9)


# -- a plain step's time measured before ---------------------------------------------


def test_a_known_plain_time_lets_a_cold_answer_draft_at_once() -> None:
    assert DraftLengthController(16).next_length() == 0  # measures the baseline
    hinted = DraftLengthController(16, plain_ms_hint=PLAIN_MS)
    assert not hinted.warm_start
    assert hinted.plain_ms == PLAIN_MS
    assert hinted.next_length() == 8  # the first probe, at once
    # A memory of the same mode knows more than the hint.
    first = DraftLengthController(16)
    simulate(first, 60, accept=0.97, draft_token_ms=3.0, row_ms=0.3)
    memory = first.memory()
    assert memory is not None
    warm = DraftLengthController(16, memory=memory, plain_ms_hint=3 * PLAIN_MS)
    assert warm.plain_ms == memory.plain_ms


def test_a_known_plain_time_still_switches_a_useless_draft_off() -> None:
    controller = DraftLengthController(16, plain_ms_hint=PLAIN_MS)
    lengths = simulate(controller, 200, accept=0.0, draft_token_ms=3.0, row_ms=0.3)
    assert not controller.drafting
    assert sum(1 for k in lengths if k) <= 12, lengths


def test_a_hint_slower_than_the_real_plain_step_is_corrected_by_the_first_drafts() -> None:
    # Verifying k + 1 rows never costs less than one row: a drafted step faster
    # than the hint lowers it, so a stale, slow hint cannot flatter a draft.
    controller = DraftLengthController(16, plain_ms_hint=3 * PLAIN_MS)
    simulate(controller, 3, accept=0.5, draft_token_ms=3.0, row_ms=0.3)
    assert controller.plain_ms is not None and controller.plain_ms <= PLAIN_MS + 16 * 0.3


def test_typical_plain_step_leaves_out_the_slow_first_step() -> None:
    assert typical_plain_step_ms([30.0, 10.0, 12.0]) is None  # too few to tell
    assert typical_plain_step_ms([30.0, 10.0, 12.0, 11.0]) == 11.0
    assert typical_plain_step_ms([30.0, 10.0, 12.0, 11.0, 50.0]) == 11.5


def _first_step_drafted(engine: SpeculativeEngine, drafting: DraftSettings) -> int:
    settings = GenerationSettings(
        n_predict=12, sampling=SamplingSettings(temperature=0.0), drafting=drafting
    )
    events = list(engine.generate(engine.tokenize("the cat and the dog"), settings))
    return next(e for e in events if isinstance(e, StepEvent)).n_drafted


def test_engine_plain_answer_lets_a_cold_adaptive_answer_draft_at_once(
    tiny_models: TinyModels,
) -> None:
    for plain_first in (False, True):
        with one_thread_engine(tiny_models) as fresh:
            if plain_first:  # an A/B's or a sweep's plain run
                assert _first_step_drafted(fresh, DraftSettings(source=DraftSource.NONE)) == 0
            drafted = _first_step_drafted(fresh, DraftSettings())
            assert (drafted > 0) == plain_first, (plain_first, drafted)


def test_replacing_the_draft_model_forgets_what_was_learned_of_the_old_one(
    tiny_models: TinyModels,
) -> None:
    with one_thread_engine(tiny_models) as fresh:
        settings = GenerationSettings(
            n_predict=40, sampling=SamplingSettings(temperature=0.0), drafting=DraftSettings()
        )
        list(fresh.generate(fresh.tokenize("the cat and the dog"), settings))
        assert any(key[0] is DraftSource.MODEL for key in fresh._draft_memory)
        fresh.replace_draft(ModelConfig(tiny_models.draft, n_threads=1))
        assert not any(key[0] is DraftSource.MODEL for key in fresh._draft_memory)


# Where the draft proposed each emitted token (1) in two real answers of the demo pair
# to the chat set (tests/benchmarks/draft_length_replay.py record, fixed 16-token
# drafts): the second opens with three rejections in nine tokens, then the draft
# knows the rest of it, and fixed 4-5-token drafts pay 1.09x over the answer at the
# costs below.
_CHAT_ANSWER = "1101111111111111111111011111111111111111111111111111111111111111111101110"
_HARD_OPENING = "011011011" + "1" * 87
# A thin margin, as on 2 CPU cores when the draft's decodes run slow: plain step,
# per drafted token, per verified row, fixed per verification, fixed per draft (ms).
_THIN_MARGIN_COSTS = (15.6, 8.0, 2.7, 4.0, 4.0)


def _replay_answer(controller: DraftLengthController, right: str) -> float:
    """Decode an answer whose draft was right where ``right`` says, at
    ``_THIN_MARGIN_COSTS``; the speed-up over plain decoding."""
    plain_ms, draft_ms, row_ms, verify_ms, draft_overhead_ms = _THIN_MARGIN_COSTS
    position, elapsed = 0, 0.0
    while position < len(right):
        k = controller.next_length()
        kept = 0
        while kept < k and position + kept < len(right) and right[position + kept] == "1":
            kept += 1
        drafting = draft_overhead_ms + k * draft_ms if k else 0.0
        verifying = plain_ms + (verify_ms + k * row_ms if k else 0.0)
        controller.record(k, kept, drafting, verifying)
        elapsed += drafting + verifying
        position += kept + 1
    return position * plain_ms / elapsed


def test_a_hard_opening_does_not_switch_off_an_answer_of_a_pair_that_paid() -> None:
    # An answer's first tokens are often the draft's hardest. Judged as strictly as
    # later steps, five of them switched this answer off for good (0.94x plain where
    # fixed 4 paid 1.09x); over its first steps only a clear loss does.
    first = DraftLengthController(16, plain_ms_hint=_THIN_MARGIN_COSTS[0])
    _replay_answer(first, _CHAT_ANSWER * 2)
    second = DraftLengthController(16, memory=first.memory())
    speedup = _replay_answer(second, _HARD_OPENING)
    assert second.times_switched_off == 0
    assert speedup > 1.0


def test_a_warm_answer_whose_drafts_are_never_kept_is_switched_off_within_six_steps() -> None:
    # The lenient opening waits for a kept token: without that, twelve steps.
    first = DraftLengthController(16, plain_ms_hint=_THIN_MARGIN_COSTS[0])
    _replay_answer(first, _CHAT_ANSWER * 2)
    second = DraftLengthController(16, memory=first.memory())
    lengths = simulate(second, 20, accept=0.0, draft_token_ms=8.0, row_ms=2.7, plain_ms=15.6)
    assert not second.drafting
    assert sum(1 for k in lengths if k) <= 6
