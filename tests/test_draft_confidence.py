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


def test_cutoff_drafts_while_the_expected_gain_beats_the_cost() -> None:
    calibration = ConfidenceCalibration()
    # A token is worth 10 ms and drafting one costs 5 ms: keep going while the
    # chance that this token and all before it are kept is at least one half.
    cutoff = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=5.0)
    # 0.9 per token: 0.9^6 = 0.53, 0.9^7 = 0.48.
    admitted = [cutoff.admits(0.97) for _ in range(10)]
    assert admitted == [True] * 6 + [False] * 4
    # Where such tokens are always kept, drafts go on.
    for _ in range(100):
        calibration.record([0.97] * 4, n_accepted=4)
    cutoff = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=5.0)
    assert all(cutoff.admits(0.97) for _ in range(40))
    # ... and stop at the first token of a kind the target rejects.
    for _ in range(100):
        calibration.record([0.6], n_accepted=0)
    cutoff = ConfidenceCutoff(calibration, token_ms=10.0, draft_token_ms=5.0)
    assert [cutoff.admits(c) for c in (0.97, 0.97, 0.6)] == [True, True, False]
    # The first token is always drafted (whether to draft at all is the draft-length
    # controller's call), even when the cost says otherwise.
    assert ConfidenceCutoff(calibration, 10.0, 50.0).admits(0.6)


def test_controller_offers_a_cutoff_only_in_the_adaptive_mode_once_costs_are_known() -> None:
    assert DraftLengthController(8, adaptive=False).cutoff() is None
    controller = DraftLengthController(8)
    assert controller.cutoff() is None
    for _ in range(3):
        controller.record(0, 0, 0.0, 10.0)
    assert controller.cutoff() is None  # no draft cost measured yet
    controller.record(4, 4, 8.0, 12.0, [0.99] * 4)
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

    drafter = _drafter(demo_engine, temperature)
    free = drafter.propose(history, 12, ConfidenceCutoff(calibration, 10.0, 0.0))
    assert len(free) == 12
    assert len(free.confidences) == 12
    if temperature > 0:
        # The confidence is the top of the distribution the token was drawn from.
        assert free.confidences == [float(q.probs.max()) for q in free.distributions]
    else:
        assert free.confidences == free.probabilities

    drafter = _drafter(demo_engine, temperature)
    too_dear = drafter.propose(history, 12, ConfidenceCutoff(calibration, 10.0, 10.5))
    assert len(too_dear) == 1  # the first token only

    # In between, the draft ends exactly where the rule stops admitting (the same
    # seed draws the same tokens up to there).
    replay = ConfidenceCutoff(calibration, 10.0, 7.0)
    expected = next(
        (i for i, confidence in enumerate(free.confidences) if not replay.admits(confidence)),
        len(free),
    )
    assert 0 < expected < 12, "the cost should cut this draft somewhere inside"
    drafter = _drafter(demo_engine, temperature)
    cut = drafter.propose(history, 12, ConfidenceCutoff(calibration, 10.0, 7.0))
    assert cut.tokens == free.tokens[:expected]
