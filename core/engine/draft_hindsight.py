"""Hindsight: how many tokens a step of each draft length would have emitted lately.

The draft length controller (core/engine/draft_length.py) needs, for each length
k, how many tokens a step drafting k emits on the text at hand. A per-position
acceptance model gets this wrong in the way that matters most: acceptance comes
in runs (a stretch the draft knows by heart, then a few rejections close
together), and a model of independent positions, fitted after a long run, keeps
drafting 12-16 tokens into the next cluster of rejections. On the demo pair's
chat set that cost the adaptive length 10% against fixed 4-token drafts.

So the recent drafts are kept as what they were: for each emitted token, whether
the draft had proposed it. A step's outcome says that for every token it emitted
(the kept ones were right, the correction was wrong), except the token after a
fully kept draft, which the draft was never asked for; it counts as right, so a
run of fully kept drafts reads as one long run. The record is then cut into runs
of right tokens, each ended by a rejection. Whatever the draft length, a step
starts right after a rejection, so a run of L right tokens costs a draft of k
floor(L / (k + 1)) + 1 steps, exactly; since the next run's length is not L but
something near it, the floor is smoothed to its average, L / (k + 1) + 1/2, and
never less than the one step a run always takes. Tokens over steps is each
length's yield, which the controller sets against each length's measured cost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

# Emitted tokens remembered, newest last. Chat text on the demo pair has a
# rejection every 15-25 tokens, in clusters: a shorter record (64 tokens, replays
# of the built-in sets at four cost settings) forgets the clusters between them
# and drafts long into the next; a longer one follows a change of text slowly.
RECORD_TOKENS = 192
# Below this many tokens the record says too little; the controller uses its
# per-position model instead.
ENOUGH_TOKENS = 20

_WRONG, _RIGHT, _NOT_ASKED = 0, 1, 2


class DraftRecord:
    """Whether the draft proposed each recently emitted token (a bounded record)."""

    def __init__(self, outcomes: Iterable[int] = ()) -> None:
        self._outcomes: deque[int] = deque(outcomes, maxlen=RECORD_TOKENS)

    def __len__(self) -> int:
        return len(self._outcomes)

    def add_step(self, n_drafted: int, n_accepted: int) -> None:
        """One drafting step: ``n_accepted`` of ``n_drafted`` drafted tokens kept."""
        self._outcomes.extend([_RIGHT] * n_accepted)
        self._outcomes.append(_WRONG if n_accepted < n_drafted else _NOT_ASKED)

    def outcomes(self) -> tuple[int, ...]:
        """The record, for the next answer's controller (``DraftRecord(outcomes)``)."""
        return tuple(self._outcomes)

    def tokens_per_step(self, n_max: int) -> np.ndarray:
        """For k = 1 … ``n_max``: the tokens a step drafting k would have emitted on
        average over the record (a step emits the kept tokens and one of the target's)."""
        outcomes = np.fromiter(self._outcomes, dtype=np.int8)
        n_asked = len(outcomes) - np.count_nonzero(outcomes == _NOT_ASKED)
        right_rate = np.count_nonzero(outcomes == _RIGHT) / n_asked if n_asked else 0.0
        # A token the draft was not asked for was right as often as the others: the
        # record read both ways, weighted by that rate.
        lenient_runs, lenient_open = _runs(outcomes == _WRONG)
        strict_runs, strict_open = _runs(outcomes != _RIGHT)
        runs = np.concatenate((lenient_runs, strict_runs))
        weights = np.repeat([right_rate, 1.0 - right_rate], [len(lenient_runs), len(strict_runs)])
        k_plus_one = np.arange(2, n_max + 2)
        # Whatever the length, a step starts right after a rejection, and a run of L
        # right tokens takes L / (k + 1) + 1/2 steps on average, at least one.
        steps = weights @ np.maximum(1.0, runs[:, None] / k_plus_one + 0.5)
        # The open run has not ended: it takes the steps it took so far, no more.
        open_run = right_rate * lenient_open + (1.0 - right_rate) * strict_open
        return len(outcomes) / np.maximum(steps + open_run / k_plus_one, 1e-9)


def _runs(wrong: np.ndarray) -> tuple[np.ndarray, int]:
    """The right tokens before each wrong one, and the right tokens after the last."""
    bounds = np.flatnonzero(np.concatenate(([True], wrong)))
    return np.diff(bounds) - 1, len(wrong) - bounds[-1]
