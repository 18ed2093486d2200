"""The adaptive mode's early stop on low draft confidence."""

from __future__ import annotations

import pytest

from core.engine import DraftSettings, SamplingSettings, SpeculativeEngine
from core.engine.draft_confidence import ConfidenceCalibration, ConfidenceCutoff
from core.engine.draft_length import DraftLengthController
from core.engine.drafting import ModelDrafter
from core.engine.verification import SpeculativeSampling


def test_calibration_starts_trusting_and_learns_what_the_target_keeps() -> None:
    calibration = ConfidenceCalibration()
    assert calibration.acceptance(0.97) == pytest.approx(0.9)
    assert calibration.acceptance(0.1) == pytest.approx(0.9)
    # A draft that is sure of itself and wrong: its confident tokens are rejected.
    for _ in range(30):
        calibration.record([0.97], n_accepted=0)
    assert calibration.acceptance(0.97) < 0.2
    # Other bins keep their prior.
    assert calibration.acceptance(0.6) == pytest.approx(0.9)
    # Undrafted for long, a distrusted bin drifts back towards the prior, so the
    # stop does not keep it undrafted for the rest of the answer.
    for _ in range(300):
        calibration.record([0.6], n_accepted=1)
    assert calibration.acceptance(0.97) > 0.85


def test_calibration_ignores_tokens_after_the_first_rejection() -> None:
    calibration = ConfidenceCalibration()
    # Kept at 0.97, rejected at 0.85; the 0.6 token was never judged.
    calibration.record([0.97, 0.85, 0.6], n_accepted=1)
    assert calibration.acceptance(0.6) == pytest.approx(0.9)
    assert calibration.acceptance(0.97) > 0.9
    assert calibration.acceptance(0.85) < 0.9


def test_cutoff_stops_at_a_token_whose_kind_does_not_pay() -> None:
    calibration = ConfidenceCalibration()
    # A token is worth 10 ms and drafting one costs 5 ms: a token pays when tokens
    # of its confidence are kept at least half the time; trusted at first.
    cutoff = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=5.0)
    assert all(cutoff.admits(confidence) for confidence in (0.97, 0.6, 0.2, 0.99))
    # The target rejects what the draft proposes at 0.6.
    for _ in range(100):
        calibration.record([0.97, 0.6], n_accepted=1)
    cutoff = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=5.0)
    assert [cutoff.admits(c) for c in (0.97, 0.97, 0.6)] == [True, True, False]
    # A kind kept 70% of the time is worth 7 ms a token. It ends a draft only where
    # that is clearly less than a drafted token costs: near break-even a wrong cut
    # costs more than the token (the run after it needs another step).
    for _ in range(50):
        for kept in range(10):
            calibration.record([0.97, 0.85], n_accepted=2 if kept < 7 else 1)
    assert calibration.acceptance(0.85) == pytest.approx(0.7, abs=0.03)
    cheap = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=6.0)
    assert [cheap.admits(c) for c in (0.97, 0.85)] == [True, True]
    at_break_even = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=8.0)
    assert [at_break_even.admits(c) for c in (0.97, 0.85)] == [True, True]
    dear = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=10.0)
    assert [dear.admits(c) for c in (0.97, 0.85)] == [True, False]
    # Kinds the target has not been rejecting are left to the draft-length
    # controller, however dear drafting is.
    assert [dear.admits(c) for c in (0.2, 0.97)] == [True, True]
    # The first token is always drafted (whether to draft at all is the draft-length
    # controller's call), even when the cost says otherwise.
    assert ConfidenceCutoff(calibration, 10.0, 50.0).admits(0.6)


def test_controller_offers_a_cutoff_only_in_the_adaptive_mode_once_costs_are_fitted() -> None:
    assert DraftLengthController(8, adaptive=False).cutoff() is None
    controller = DraftLengthController(8)
    assert controller.cutoff() is None
    for _ in range(3):
        controller.record(0, 0, 0.0, 10.0)
    assert controller.cutoff() is None  # no draft cost measured yet
    lengths = [2, 4, 3, 4, 2]
    for k in lengths[:3]:
        controller.record(k, k, 2.0 * k, 12.0 + k, [0.99] * k)
    assert controller.cutoff() is None  # too few drafted steps to fit their cost
    for k in lengths[3:]:
        controller.record(k, k, 2.0 * k, 12.0 + k, [0.99] * k)
    cutoff = controller.cutoff()
    assert cutoff is not None
    assert cutoff.admits(0.99)
    assert cutoff.admits(0.99)


def test_controller_learns_confidence_from_recorded_steps() -> None:
    controller = DraftLengthController(8)
    for _ in range(3):
        controller.record(0, 0, 0.0, 10.0)
    before = controller.confidence.acceptance(0.85)
    for _ in range(10):
        controller.record(3, 0, 6.0, 12.0, [0.85, 0.85, 0.85])
    assert controller.confidence.acceptance(0.85) < before / 2


def _drafter(engine: SpeculativeEngine, temperature: float) -> ModelDrafter:
    assert engine.draft is not None
    sampling = (
        SpeculativeSampling(SamplingSettings(temperature=temperature, seed=5))
        if temperature > 0
        else None
    )
    return ModelDrafter(engine.draft, DraftSettings(n_max=16), engine.target.n_vocab, sampling)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_model_draft_stops_where_the_cutoff_says(
    demo_engine: SpeculativeEngine, temperature: float
) -> None:
    history = demo_engine.tokenize("Write a poem about the sea:")
    calibration = ConfidenceCalibration()

    # The draft's own tokens below 0.9 confidence are never kept.
    for _ in range(100):
        calibration.record([0.95, 0.85], n_accepted=1)
        calibration.record([0.95, 0.75], n_accepted=1)
        calibration.record([0.95, 0.6], n_accepted=1)
        calibration.record([0.95, 0.4], n_accepted=1)
        calibration.record([0.95, 0.2], n_accepted=1)
    drafter = _drafter(demo_engine, temperature)
    free = drafter.propose(history, 12, ConfidenceCutoff(calibration, 10.0, 0.0))
    assert len(free) == 12
    assert len(free.confidences) == 12
    if temperature > 0:
        # The confidence is the top of the distribution the token was drawn from.
        assert free.confidences == [float(q.probs.max()) for q in free.distributions]
    else:
        assert free.confidences == free.probabilities

    # With a dear draft, the draft ends exactly at its first doubtful token (the
    # same seed draws the same tokens up to there).
    replay = ConfidenceCutoff(calibration, 10.0, 7.0)
    expected = next(
        (i for i, confidence in enumerate(free.confidences) if not replay.admits(confidence)),
        len(free),
    )
    assert 0 < expected < 12, "a doubtful token should cut this draft somewhere inside"
    drafter = _drafter(demo_engine, temperature)
    cut = drafter.propose(history, 12, ConfidenceCutoff(calibration, 10.0, 7.0))
    assert cut.tokens == free.tokens[:expected]
    assert all(confidence >= 0.9 for confidence in cut.confidences[1:])
