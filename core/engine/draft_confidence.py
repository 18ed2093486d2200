"""Stopping a draft early where the draft model is unsure (the adaptive mode).

A fixed ``--draft-p-min`` needs the user to know how the draft's confidence
relates to acceptance, which depends on the pair, the text and the temperature.
The adaptive mode learns that relation within the answer instead: every drafted
token's confidence (the draft's top probability, taken *before* the token is
drawn) falls into a bin, and the bin counts how often such tokens were kept
(decayed, so the recent text counts most, towards a prior that trusts the draft).

A draft then stops at the first token whose confidence bin is kept clearly too
rarely to pay for itself: worth a(c) tokens (a: the learned acceptance at
confidence c) at the time a token takes at the current rate, it costs one more
draft decode and verification row. How far drafts survive in general is the
draft-length controller's business (core/engine/draft_length.py), which sets the
most a step may draft; this stop only removes the tokens the draft itself flags
as doubtful, as llama.cpp's p-min does with a threshold the user has to guess.

The stop depends only on what the draft computed before drawing the token, so
every sampling scheme stays exact (as with llama.cpp's p-min) and greedy output
is unchanged.
"""

from __future__ import annotations

import bisect

# Bin edges of the confidence (most drafted tokens of a pair that pays are very
# confident, so the top is resolved finely). Nine bins: plain Python lists, since
# every drafted token is binned, and right after a draft decode (llama.cpp's threads
# still on the cores) a numpy call on such a small array cost 10-100 us.
_EDGES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995)
# The prior: every bin starts out trusted (worth this many tokens kept at this
# rate). When sampling, a draft close to the target is kept however unsure it is
# (sum(min(p, q)) is 1 for p = q at any entropy), so the confidence alone says
# little until the answer has shown how this pair behaves; a bin that starts out
# distrusted would never be drafted, so never learn otherwise.
_PRIOR_WEIGHT = 2.0
_PRIOR_ACCEPTANCE = 0.9
_PRIOR_KEPT = _PRIOR_WEIGHT * _PRIOR_ACCEPTANCE
# Per-step decay of the counts towards the prior: recent text counts most, and a
# bin the stop keeps undrafted drifts back to trusted and is tried again.
_DECAY = 0.98
# A token ends a draft only when it is expected to return clearly less than it
# costs. Near break-even the call rests on a handful of tokens in one bin and on
# the prior (on 2 CPU cores a drafted and verified token costs about 0.9 of a
# token at the drafting rate, so the prior itself sits at break-even), and a
# wrong cut costs more than the token: the kept run after it needs another step,
# with its fixed overhead, and shifts where the next steps start. Cutting at
# break-even made greedy answers of the built-in code set 7.7% slower than not
# cutting at all (interleaved in one run), and every cut there fell on a token
# the target kept; at 0.75 the two were within 2% on every built-in set.
_CLEAR_LOSS = 0.75


def confidence_bin(confidence: float) -> int:
    return bisect.bisect_right(_EDGES, confidence)


class ConfidenceCalibration:
    """How often the target kept a drafted token, by the draft's confidence in it."""

    def __init__(self) -> None:
        self._kept = [_PRIOR_KEPT] * (len(_EDGES) + 1)
        self._drafted = [_PRIOR_WEIGHT] * (len(_EDGES) + 1)

    def record(self, confidences: list[float], n_accepted: int) -> None:
        """One verified draft: tokens before ``n_accepted`` were kept, the one at it
        was rejected, and those after it were never judged (they say nothing)."""
        self._kept = [_PRIOR_KEPT + _DECAY * (kept - _PRIOR_KEPT) for kept in self._kept]
        self._drafted = [
            _PRIOR_WEIGHT + _DECAY * (drafted - _PRIOR_WEIGHT) for drafted in self._drafted
        ]
        for position, confidence in enumerate(confidences[: n_accepted + 1]):
            index = confidence_bin(confidence)
            self._drafted[index] += 1.0
            if position < n_accepted:
                self._kept[index] += 1.0

    def acceptance(self, confidence: float) -> float:
        index = confidence_bin(confidence)
        return self._kept[index] / self._drafted[index]


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
        self._first = True

    def admits(self, confidence: float) -> bool:
        """Whether to draft the next token, whose confidence is ``confidence``."""
        if self._first:
            self._first = False
            return True
        acceptance = self._calibration.acceptance(confidence)
        # Only a kind of token the target has been rejecting ends a draft: when
        # drafting as such does not pay, the controller drafts less or not at all,
        # and cutting every draft to one token here would only add a verification
        # overhead to each step.
        if acceptance >= _PRIOR_ACCEPTANCE:
            return True
        return acceptance * self._token_ms >= _CLEAR_LOSS * self._draft_token_ms
