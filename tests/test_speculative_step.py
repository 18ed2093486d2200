"""The acceptance/residual step of speculative sampling on hand-made p and q."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from core.engine.distribution import Distribution
from core.engine.verification import accept_or_resample, residual


def dist(probs: dict[int, float]) -> Distribution:
    return Distribution(np.array(list(probs), dtype=np.int64), np.array(list(probs.values())))


def emitted_frequencies(p: Distribution, q: Distribution, n: int, seed: int = 0) -> Counter[int]:
    """Run the full draft-then-verify position ``n`` times: sample d from q, verify."""
    rng = np.random.default_rng(seed)
    counts: Counter[int] = Counter()
    for _ in range(n):
        token, _ = accept_or_resample(p, q, q.sample(rng), rng)
        counts[token] += 1
    return counts


def assert_matches(counts: Counter[int], p: Distribution, n: int) -> None:
    for token, probability in zip(p.ids.tolist(), p.probs.tolist(), strict=True):
        # 5 standard deviations: a wrong step misses by far more.
        tolerance = 5 * np.sqrt(probability * (1 - probability) / n) + 1e-9
        assert counts[token] / n == pytest.approx(probability, abs=tolerance), token
    assert sum(counts[t] for t in p.ids.tolist()) == n  # nothing outside p's support


def test_identical_distributions_accept_everything() -> None:
    p = dist({1: 0.5, 2: 0.3, 3: 0.2})
    rng = np.random.default_rng(1)
    for _ in range(2000):
        drafted = p.sample(rng)
        assert accept_or_resample(p, p, drafted, rng) == (drafted, True)


def test_emitted_tokens_follow_p_for_overlapping_supports() -> None:
    p = dist({1: 0.6, 2: 0.3, 3: 0.1})
    q = dist({1: 0.2, 2: 0.5, 4: 0.3})
    assert_matches(emitted_frequencies(p, q, 20_000), p, 20_000)


def test_token_the_draft_never_proposes_still_appears_through_the_residual() -> None:
    # q(3) = 0 where p(3) > 0: token 3 can only come from a rejection.
    p = dist({1: 0.5, 2: 0.2, 3: 0.3})
    q = dist({1: 0.7, 2: 0.3})
    r = residual(p, q)
    assert r.prob(3) == pytest.approx(1.0)  # max(0, p - q) is 0 for tokens 1 and 2
    assert_matches(emitted_frequencies(p, q, 20_000), p, 20_000)


def test_disjoint_supports_reject_everything_and_resample_p() -> None:
    p = dist({1: 0.25, 2: 0.75})
    q = dist({5: 0.5, 6: 0.5})
    rng = np.random.default_rng(2)
    counts: Counter[int] = Counter()
    for _ in range(20_000):
        token, kept = accept_or_resample(p, q, q.sample(rng), rng)
        assert not kept
        counts[token] += 1
    assert_matches(counts, p, 20_000)
    r = residual(p, q)
    assert r.probs_of(np.array([1, 2])).tolist() == pytest.approx([0.25, 0.75])


def test_one_hot_proposal_is_kept_with_probability_p() -> None:
    # An n-gram draft token: q is one-hot.
    p = dist({1: 0.3, 2: 0.7})
    q = Distribution.one_hot(1)
    rng = np.random.default_rng(3)
    outcomes = [accept_or_resample(p, q, 1, rng) for _ in range(20_000)]
    kept = sum(1 for _, accepted in outcomes if accepted)
    assert kept / 20_000 == pytest.approx(0.3, abs=0.02)
    assert all(token == 2 for token, accepted in outcomes if not accepted)


def test_residual_is_normalised_max_of_p_minus_q() -> None:
    p = dist({1: 0.5, 2: 0.3, 3: 0.2})
    q = dist({1: 0.6, 2: 0.1, 3: 0.1, 4: 0.2})
    r = residual(p, q)
    assert r.prob(1) == 0.0 and r.prob(4) == 0.0
    assert r.prob(2) == pytest.approx(0.2 / 0.3)
    assert r.prob(3) == pytest.approx(0.1 / 0.3)
    assert float(r.probs.sum()) == pytest.approx(1.0)
    # Equal distributions leave no residual mass; p is the fallback.
    assert residual(p, p) is p


def test_a_wrong_residual_is_detected() -> None:
    # The check above has the power to notice a classic bug: resampling from p
    # instead of the residual after a rejection.
    p = dist({1: 0.6, 2: 0.3, 3: 0.1})
    q = dist({1: 0.2, 2: 0.5, 4: 0.3})
    rng = np.random.default_rng(4)
    counts: Counter[int] = Counter()
    for _ in range(20_000):
        drafted = q.sample(rng)
        if rng.random() * q.prob(drafted) < p.prob(drafted):
            counts[drafted] += 1
        else:
            counts[p.sample(rng)] += 1
    with pytest.raises(AssertionError):
        assert_matches(counts, p, 20_000)
