"""Stopping a draft early where the draft model is unsure (the adaptive mode).

A fixed ``--draft-p-min`` needs the user to know how the draft's confidence
relates to acceptance, which depends on the pair, the text and the temperature.
The adaptive mode learns that relation within the answer instead: every drafted
token's confidence (the draft's top probability, taken *before* the token is
drawn) falls into a bin, and the bin counts how often such tokens were kept
(decayed, so the recent text counts most, towards a prior that trusts the draft).

A draft then stops at the first position where drafting one more token is
expected to cost more than it brings: the token adds one emitted token with
probability S * a(c) (S: every earlier token of this draft kept, a(c): the
learned acceptance at its confidence), worth the time one token takes at the
current rate, and costs one more draft decode and verification row. This is the
marginal rule for the best tokens-per-time ratio.

The stop depends only on what the draft computed before drawing the token, so
every sampling scheme stays exact (as with llama.cpp's p-min) and greedy output
is unchanged.
"""

from __future__ import annotations

import numpy as np

# Bin edges of the confidence (most drafted tokens of a pair that pays are very
# confident, so the top is resolved finely).
_EDGES = np.array([0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995])
# The prior: every bin starts out trusted (worth this many tokens kept at this
# rate). When sampling, a draft close to the target is kept however unsure it is
# (sum(min(p, q)) is 1 for p = q at any entropy), so the confidence alone says
# little until the answer has shown how this pair behaves; a bin that starts out
# distrusted would never be drafted, so never learn otherwise.
_PRIOR_WEIGHT = 2.0
_PRIOR_ACCEPTANCE = 0.9
# Per-step decay of the counts towards the prior: recent text counts most, and a
# bin the stop keeps undrafted drifts back to trusted and is tried again.
_DECAY = 0.98


def confidence_bin(confidence: float) -> int:
    return int(np.searchsorted(_EDGES, confidence, side="right"))


class ConfidenceCalibration:
    """How often the target kept a drafted token, by the draft's confidence in it."""

    def __init__(self) -> None:
        self._prior_kept = np.full(_EDGES.size + 1, _PRIOR_WEIGHT * _PRIOR_ACCEPTANCE)
        self._prior_drafted = np.full(_EDGES.size + 1, _PRIOR_WEIGHT)
        self._kept = self._prior_kept.copy()
        self._drafted = self._prior_drafted.copy()

    def record(self, confidences: list[float], n_accepted: int) -> None:
        """One verified draft: tokens before ``n_accepted`` were kept, the one at it
        was rejected, and those after it were never judged (they say nothing)."""
        self._kept = self._prior_kept + _DECAY * (self._kept - self._prior_kept)
        self._drafted = self._prior_drafted + _DECAY * (self._drafted - self._prior_drafted)
        for position, confidence in enumerate(confidences[: n_accepted + 1]):
            index = confidence_bin(confidence)
            self._drafted[index] += 1.0
            if position < n_accepted:
                self._kept[index] += 1.0

    def acceptance(self, confidence: float) -> float:
        index = confidence_bin(confidence)
        return float(self._kept[index] / self._drafted[index])


class ConfidenceCutoff:
    """The stop rule for one draft: ``admits`` is asked before each token is drawn.

    The first token is always drafted: whether a step drafts at all is the
    draft-length controller's call, and the tokens it drafts are what teaches the
    calibration.

    Args:
        calibration: learned acceptance by confidence.
        token_ms: what one emitted token is worth: the time a token takes at the
            current rate.
        draft_token_ms: what drafting (and verifying) one more token costs.
    """

    def __init__(
        self, calibration: ConfidenceCalibration, token_ms: float, draft_token_ms: float
    ) -> None:
        self._calibration = calibration
        self._token_ms = token_ms
        self._draft_token_ms = draft_token_ms
        self._survival = 1.0
        self._first = True

    def admits(self, confidence: float) -> bool:
        """Whether to draft the next token, whose confidence is ``confidence``."""
        kept = self._survival * self._calibration.acceptance(confidence)
        if not self._first and kept * self._token_ms < self._draft_token_ms:
            return False
        self._first = False
        self._survival = kept
        return True
