"""Adaptive draft length: draft as far as it pays, and not at all when it doesn't.

Speculation only pays when the tokens a step gains are worth more than the draft
and the wider verification batch cost. Whether they are depends on the pair, the
machine, the text and the temperature, so the controller measures, within one
answer:

* the plain step time (steps that verified no draft: one target row; the
  answer starts with a few, as its first decodes are often slow, and one
  drafting step in 16 is plain to keep measuring it),
* the draft's cost per drafted token and the verification's cost per extra row,
* how far drafts survive: for each draft position j, the decayed share of steps
  that reached j and were rejected there (a hazard; Kaplan-Meier style, so
  censoring by the draft length is handled), shrunk towards the hazard pooled
  over every drafted token (the geometric model of a per-token acceptance
  rate). Positions drafted often keep their own rate, which models bursty
  acceptance; positions beyond the recent drafts get the pooled rate, which
  rests on all the data, so a run of short drafts does not make long ones look
  hopeless.

From these, drafting k tokens is expected to emit E(k) = 1 + sum_{j<=k} S(j)
tokens (S: survival); once the recent drafts cover enough tokens, E(k) is instead
what a step of k would have emitted on them (``DraftRecord``,
core/engine/draft_hindsight.py), which keeps the runs and clusters of acceptance
that a per-position model averages away. Either way, in plain + k * (draft + row)
milliseconds, scaled by how
the recent drafting steps' measured times compared with that model (a drafted
step also has costs that are not per token), against one token per plain step.
The controller drafts the longest k within a tolerance of the best expected
speed-up (0.5% with the record, whose yields for long lengths differ by less than
its noise; with the per-position model 3%, since acceptance comes in
runs and long drafts do better than that model says, and after a fully kept draft
one up to twice as long, as far as the model expects nearly the best speed-up
there); when even the best is
below 1.0 (over the drafting steps before an answer's 8th, where the draft's
decodes are slow and the text is the one it knows least: below 0.75, once a drafted
token of the answer was kept, unless drafting was off), or when the drafting
steps so far really emitted fewer tokens per millisecond than plain steps would
(the model can be wrong; the measured rate cannot), five drafting steps in a
row (one for a draft that never had a token kept), and a plain step timed then
confirms it (a machine running slow makes drafting look worse against a plain time
measured before), it stops drafting and probes again after a growing number of plain
steps, but only when the probe fits a small share of the answer's time: a draft
model that sat out N tokens must first decode them (in one batch; on 2 CPU cores 32
tokens cost about six single decodes), so on such machines a model draft that lost
is probed again only now and then, while an n-gram draft (free to resume) is probed
often. A probe that leaves the expectation at break-even resumes drafting: text gets
easier and harder within an answer, and a draft switched off in a hard stretch at
its start (where fixed 4-token drafts of a weak draft still paid 1.2x over the whole
answer) would otherwise miss every easy stretch after it. The draft length never
changes what is emitted at temperature 0 and keeps every sampling scheme exact,
since it depends only on past steps.

An answer starts from what the previous answer of the same engine and drafting
mode learned (``DraftLengthMemory``): consecutive answers of a chat share the pair,
the machine and usually the kind of text, so only the first answer after a load
measures the baseline and probes with a fixed length, and a draft that lost clearly
stays off, with one short probe as the answer starts, instead of losing again for a
few steps. Without such an answer, a plain step's time that the engine measured in
any earlier answer (an A/B's or a sweep's plain run, a plain chat answer) spares the
baseline steps: the answer drafts from its first step. A verdict reached on a bad
stretch must not outlive the answer, though: the last answer's acceptance counts
half against the new text's, and a draft that was switched off near break-even
starts the next answer with a trial draft, which resumes drafting unless it leaves
the expectation clearly below break-even.

An answer that starts cold (no such memory) cannot trust its model for its first
drafting steps: their decodes are slow and no step-cost line is fitted yet, so
there the draft's own runs set a floor on the length (the run just kept; after a
fully kept draft, doubling back up to the first probe's length). The step-cost line
is fitted only on steps timed in full: an answer's last step, with no next draft
to catch up on, is a draft decode short of its length.

Within a step, the draft also stops early where it is unsure (``cutoff``,
core/engine/draft_confidence.py): the length chosen here is the most it may
draft, and a token whose learned chance of being kept no longer pays for its
draft decode ends the draft.
"""

from __future__ import annotations

import copy
import functools
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from core.engine.draft_confidence import ConfidenceCalibration, ConfidenceCutoff
from core.engine.draft_hindsight import ENOUGH_TOKENS, DraftRecord

# Plain steps that measure the baseline before the first draft: the first decodes
# of an answer are often slow, and a plain time measured on one of them would
# flatter every draft after it (a weak draft would look like a win).
_BASELINE_STEPS = 3
# While drafting, one step in this many is plain, to measure the baseline again:
# nothing else does (a verification of k + 1 rows says little about one row), and
# a baseline that stays too high makes a losing draft look like a winner. It
# costs little: one step without a gain, and one more token for the draft to
# catch up on in the next step's batch.
_REMEASURE_EVERY = 16
# And early on, sooner: the baseline steps are the answer's first decodes, often
# slow, and a baseline measured on them flatters every draft after it (a weak draft
# at 0.74x plain read 1.2x until the 16th drafting step measured a plain step).
_EARLY_REMEASURES = (4, 8)
# Before any draft was measured: a first probe this long. Long enough that a pair
# that pays shows it at once (with 4, replays of real answers spent their first
# steps climbing back from one early rejection: 4, 8, 1, 2, 4 ...), short enough
# that a weak draft loses little.
_FIRST_DRAFT = 8
_PROBE_DRAFT = 2
# While drafting, never fewer than this: a drafting step has a fixed cost (on 2
# CPU cores a 2-row verification took 31 ms against a plain step's 17) that one
# drafted token cannot pay back, and a run of 1-token drafts never measures how
# far the draft's guesses survive beyond the first, so the model stays as
# pessimistic as the draft that made it choose 1 (a weak draft settled on 1s and
# switched off, where fixed 4-token drafts paid 1.16x). The confidence cutoff
# still ends a draft after one token where the draft is unsure.
_SHORTEST_DRAFT = 2
# A new answer is new text: what the last answer measured about acceptance (and
# the measured rate of its drafting steps) counts this much against the new
# answer's own steps. Otherwise the stretch that switched drafting off at the end
# of one answer (often a hard passage of that text) would decide the next answer.
_CARRIED_EVIDENCE = 0.5
# An answer whose predecessor switched drafting off when it was about to break
# even (the expected speed-up at least this) starts with a trial draft of the
# length that was best, and resumes drafting when that leaves the expectation at
# break-even or better; a clearly losing draft gets the short probe instead.
_TRIAL_IF_AT_LEAST = 0.9
_RESUME_SPEEDUP = 1.0
# Plain steps between probes while drafting is off; doubled after each failed probe.
_FIRST_PROBE_GAP = 32
# Probes (their catch-up and their drafts) may cost at most this share of the time
# the answer has taken so far. (At 3%, replays of real answers showed a model
# draft switched off early never coming back, losing the later easy stretches.)
_PROBE_BUDGET = 0.1
# Until a probe has measured it, a skipped token is assumed to cost the draft this
# share of a drafted token to catch up on (batched decoding is cheaper per token).
_CATCH_UP_SHARE = 0.5
_MAX_PROBE_GAP = 256
# Weight of the newest measurement in the timing averages: high when it is lower
# than the average, low when higher. Slow outliers (the first decode of an
# answer, another process taking the CPU) are common and fast ones are not, so
# the averages follow the typical time rather than the noise.
_FASTER_WEIGHT = 0.5
_SLOWER_WEIGHT = 0.1
# Per-step decay of the acceptance counts: recent steps matter most.
_DECAY = 0.95
# The measured rate of drafting steps overrules the model once it covers this many
# (decayed) emitted tokens and shows a clear loss. Acceptance comes in runs, so a
# handful of steps says little (three early rejections after four full drafts of
# a pair that pays 1.3x measure 0.94x), and a model draft that was switched off
# is rarely probed again: the rate forgets more slowly than the acceptance counts
# and needs more tokens. A draft that really loses is caught by the model first;
# this catches what the model's linear costs miss.
_RATE_DECAY = 0.98
_RATE_EVIDENCE_TOKENS = 48.0
_CLEAR_LOSS = 0.95
# Prior hazard, as pseudo-counts that decay like real steps (so a draft that is
# never kept soon looks like one).
_PRIOR_HAZARD = 0.25
_PRIOR_WEIGHT = 3.0
# Each position's hazard is its own count shrunk towards the hazard pooled over
# all positions (the geometric model: every drafted token is kept with the same
# probability), with this many pseudo-steps. Positions drafted often get their
# own estimate (acceptance comes in runs: deep positions of a long draft are
# kept more often than the first ones); positions drafted rarely or never, such
# as those beyond the recent drafts, get the pooled rate, which rests on every
# drafted token measured and so is neither noisy nor too pessimistic.
_POOL_WEIGHT = 4.0
# Acceptance comes in runs, which the pooled rate underestimates at deep
# positions: among lengths expected to be within this share of the best, take
# the longest. (Not with the draft record, which keeps the runs: this tolerance took
# chat drafts into the next cluster of rejections.)
_LENGTH_TOLERANCE = 0.03
# With the draft record, a much smaller one: on text the draft knows almost entirely
# the record's yields for 12 and 16 tokens differ by about half a percent, less than
# its own noise, and the shorter length costs a whole step per long run it cuts.
# Replays of the built-in sets (draft_length_replay.py compare, 24 noise seeds, four
# cost settings): code 0.972-0.993 of the best fixed length against 0.966-0.973 with
# none, chat, rewrite and the weak draft within 0.005 of it; at 0.01 chat fell to 0.948.
_RECORD_LENGTH_TOLERANCE = 0.005
# After a fully kept draft the next may be up to twice as long, but only as long as
# the model expects at least this share of the best speed-up: where a draft token
# costs half a target step (a small draft on CPU) a doubled draft that fails early
# costs more than the run it hoped for (16-token drafts after 8/8 made a chat answer
# on 2 cores lose 16%), while where drafts are cheap the curve is flat and the
# exploration goes as far as before. At 0.9 it still took chat drafts to 10-16
# tokens where 8 was best: warm replays of the demo pair's chat set (plain step
# 18 ms, 7 ms a drafted token) gave 0.93 of the best fixed length at 0.9 and 0.99
# at 0.97, sampled chat 0.90 and 0.94, rewrite and code unchanged at 0.99 and
# 0.97, the weak draft 1.05 (tests/benchmarks/draft_length_replay.py --warm).
_EXPLORE_TOLERANCE = 0.97
# (Exploring is for the per-position model only: in the draft record a fully kept
# draft extends the run it belongs to, and longer lengths gain by it at once.)
# The linear cost model misses what a drafted step costs beyond its tokens and
# rows (on CPU a verification of 2 rows costs a plain step plus ~20 ms, one of
# 14 rows ~6 ms a row), and the timing averages follow the fast side. So the
# model's step times are checked against the measured ones: the median ratio of
# the last few drafting steps scales the model's cost (timing only, so unlike
# the measured rate it needs no luck with acceptance to be accurate; the median
# ignores a step slowed by another process).
_CALIBRATION_STEPS = 8
# Better still, a drafted step's time is fitted as a line in the draft length over
# the recent drafting steps: intercept (the plain step plus the fixed overhead of
# drafting and of a wider verification) plus slope (per drafted token). The
# overhead is what decides short drafts of a weak pair: spread per token, as in the
# model above, it makes one or two drafted tokens look cheaper than they are and
# long drafts dearer. Theil-Sen (median of pairwise slopes, then median
# intercept) ignores steps slowed by another process. Steps that first caught up
# on skipped tokens are left out. The slope stays within a factor of the per-token
# model's so that a few noisy steps cannot make long drafts look free, and never
# above it: that model spreads each step's fixed costs over its tokens, so its
# cost per token is the most one more token can cost. Up to 1.5 times it, a cold
# code answer drafting 7-8 tokens a step (no other lengths to fit on) read slopes
# of 11-13 ms from pairs one token apart where a token cost 8.7, and drafted 8
# for nine steps where fixed 16 kept every token; capped, it went to 16 after four.
_FIT_STEPS = 24
_MIN_FIT_STEPS = 4
_SLOPE_RANGE = (0.25, 1.0)
# Keep drafting only when it is expected to beat plain decoding by this factor.
# With the per-position model it was 1.05: that model flattered weak drafts
# (measured on CPU, the weak pair predicted 1.05x lost 5-15%). The draft record
# does not, and a wrong "off" costs more than it seemed: while off, nothing shows
# the text getting easier (only drafting steps measure acceptance, and a model
# draft is probed rarely), and at 1.05 five steps of a slow stretch just after a
# sweep's fixed cells (expected 1.00-1.04x) switched off a chat answer on a pair
# that paid 1.44x at fixed 4 tokens, for the rest of that answer.
_MIN_SPEEDUP = 1.0
# The first drafting steps of a cold start (no memory): their decodes are slow and
# the step-cost line is not fitted yet, so the draft's own runs set a floor on the
# length (``next_length``). A warm start is past them.
_COLD_START_STEPS = 8
# Drafting steps in a row that must find drafting losing before it is switched off:
# off is nearly for good for a model draft, and hard stretches of a few steps are
# common in text where drafting pays over the answer (with 3, replays of the demo
# pair at a faster plain step switched off where fixed 8-token drafts paid 1.23x).
_LOSING_STEPS = 5
# A model draft switched off is rarely probed again, so over the drafting steps
# before an answer's 8th, drafting stops only when it is expected to lose clearly
# (below _CLEARLY_LOSING): a draft that merely breaks even costs next to nothing for
# those few steps. In a cold start the draft's first decodes are slow, another
# process may hold the CPU for a while, and a few early rejections are common even
# for a pair that pays. In a warm one, the answer opens where the draft knows the
# text least (the new question has just been read): a chat answer of the demo pair
# on 2 CPU cores that opened with three rejections in nine tokens, after an answer
# that paid, switched off for good after its fifth drafting step (0.94x plain where
# fixed 4-5-token drafts paid 1.09x on it) when only cold starts were judged so. In
# replays of the built-in sets (draft_length_replay.py compare) chat rose from 0.962
# to 0.975 of the best fixed length at the thinnest margin, the rest within 0.01; in
# interleaved runs on the chat set 0.979 against 0.960 of fixed 4 (switched off
# once, against three times).
# Not for an answer that started with drafting off (its trial and probes have
# thresholds of their own), nor after drafting was switched off within the answer,
# nor while not one drafted token of the answer was kept.
_LENIENT_OPENING_STEPS = 8
_CLEARLY_LOSING = 0.75


@dataclass(frozen=True)
class DraftLengthMemory:
    """What one answer's controller learned about a pair, for the next answer.

    Consecutive answers of a chat use the same pair, machine and kind of text, so
    the next answer starts where this one ended: no plain baseline steps, no first
    probe of a fixed length, and a pair that lost stays off (probed as before)
    instead of losing again for a few steps.
    """

    plain_ms: float
    draft_token_ms: float
    row_ms: float | None
    catch_up_ms: float | None
    reached: np.ndarray
    rejected: np.ndarray
    step_times: tuple[tuple[int, float], ...]
    cost_ratios: tuple[float, ...]
    drafted_tokens: float
    drafted_ms: float
    drafting: bool
    probe_gap: int
    any_accepted: bool
    confidence: ConfidenceCalibration
    draft_record: tuple[int, ...] = ()


def typical_plain_step_ms(step_ms: list[float]) -> float | None:
    """A plain step's typical time from one answer's plain steps (in order), or
    None with too few to tell: the median, without the answer's first step, which
    is slow (the first decodes after a prompt run on cold caches)."""
    if len(step_ms) <= _BASELINE_STEPS:
        return None
    return float(np.median(step_ms[1:]))


def _resized(counts: np.ndarray, size: int) -> np.ndarray:
    resized = np.zeros(size)
    kept = min(size, len(counts))
    resized[:kept] = counts[:kept]
    return resized


def _blend(old: float | None, new: float) -> float:
    if old is None:
        return new
    return old + (_FASTER_WEIGHT if new < old else _SLOWER_WEIGHT) * (new - old)


class DraftLengthController:
    """Chooses each step's draft length for one answer.

    Args:
        n_max: the longest draft allowed (``--draft-max``); 0 never drafts.
        n_min: drafts shorter than this are not verified, so never ask for fewer.
        adaptive: False always asks for ``n_max`` (fixed draft length).
        memory: what an earlier answer of the same pair and drafting mode learned
            (``memory()``); None starts from scratch.
        plain_ms_hint: a plain step's time as this engine measured it in earlier
            answers of any mode (a plain baseline, an A/B's plain run): a cold start
            with a hint skips the baseline steps and drafts at once. Ignored when
            ``memory`` is given, which knows more.
    """

    def __init__(
        self,
        n_max: int,
        n_min: int = 0,
        adaptive: bool = True,
        memory: DraftLengthMemory | None = None,
        plain_ms_hint: float | None = None,
    ) -> None:
        self.n_max = max(n_max, 0)
        self.n_min = max(n_min, 1)
        self.adaptive = adaptive
        self.plain_ms: float | None = None
        self.draft_token_ms: float | None = None
        self.row_ms: float | None = None
        self._reached = np.zeros(self.n_max)
        self._rejected = np.zeros(self.n_max)
        if self.n_max:
            self._reached[0] = _PRIOR_WEIGHT
            self._rejected[0] = _PRIOR_WEIGHT * _PRIOR_HAZARD
        self._plain_run = 0
        self.drafting = True  # False while switched off
        self.times_switched_off = 0
        self._probe_gap = _FIRST_PROBE_GAP
        self._until_probe = 0
        self._probing = False
        self._elapsed_ms = 0.0
        self._probe_spent_ms = 0.0
        self.catch_up_ms: float | None = None  # draft cost per skipped token
        self._drafted_steps = 0
        # This answer's own drafting steps and kept tokens, with or without memory,
        # and whether its opening steps are still judged leniently.
        self._answer_drafted_steps = 0
        self._answer_accepted = 0
        self._lenient_opening = True
        self._accepted_total = 0
        self._losing_run = 0
        self._drafted_tokens = 0.0  # decayed tokens emitted by drafting steps
        self._drafted_ms = 0.0  # and the decayed time they took
        self._last_length = 0
        self._last_fully_kept = False
        self._last_accepted = 0
        self._cost_ratios: deque[float] = deque(maxlen=_CALIBRATION_STEPS)
        self._step_times: deque[tuple[int, float]] = deque(maxlen=_FIT_STEPS)
        self.confidence = ConfidenceCalibration()
        self._record = DraftRecord()
        self._probe_at_start = False
        self._trial = False
        # A verdict to switch drafting off, waiting for a plain step to confirm it:
        # the best expected speed-up over the threshold it fell below.
        self._off_margin: float | None = None
        # The cost model's answers, until the next step changes what they rest on:
        # the engine asks for them three times a step (the cutoff, the next length,
        # the verdict after the step), and on 2 CPU cores the pairwise slopes and
        # the record's hindsight took about a millisecond a step, which the
        # adaptive length paid against fixed drafts.
        self._fit_cache: tuple[tuple[float, float] | None] | None = None
        self._speedups_cache: tuple[np.ndarray, np.ndarray] | None = None
        self.warm_start = memory is not None and self.adaptive and self.n_max > 0
        # The baseline steps measure what the hint already says.
        self._baseline_known = False
        if memory is not None and self.warm_start:
            self._start_from(memory)
        elif plain_ms_hint is not None and plain_ms_hint > 0:
            self.plain_ms = plain_ms_hint
            self._baseline_known = True

    def _start_from(self, memory: DraftLengthMemory) -> None:
        self.plain_ms = memory.plain_ms
        self.draft_token_ms = memory.draft_token_ms
        self.row_ms = memory.row_ms
        self.catch_up_ms = memory.catch_up_ms
        if memory.reached.any():
            self._reached = _resized(memory.reached, self.n_max) * _CARRIED_EVIDENCE
            self._rejected = _resized(memory.rejected, self.n_max) * _CARRIED_EVIDENCE
        self._step_times.extend(memory.step_times)
        self._record = DraftRecord(memory.draft_record)
        self._cost_ratios.extend(memory.cost_ratios)
        self._drafted_tokens = memory.drafted_tokens * _CARRIED_EVIDENCE
        self._drafted_ms = memory.drafted_ms * _CARRIED_EVIDENCE
        self.drafting = memory.drafting
        self._probe_gap = memory.probe_gap
        # A draft that was off gets a probe as the answer starts (nothing to catch
        # up on yet), so a verdict reached on a bad stretch does not outlive the
        # answer; otherwise it stays off and is probed as usual.
        self._until_probe = memory.probe_gap
        self._probe_at_start = not memory.drafting
        # Past the first steps' special cases: the baseline, the fastest-is-typical
        # timings and the length floor concern a cold start. (The answer's opening
        # is still judged leniently if it starts drafting: _LENIENT_OPENING_STEPS.)
        self._drafted_steps = _COLD_START_STEPS
        self._lenient_opening = memory.drafting
        self._accepted_total = int(memory.any_accepted)
        self.confidence = copy.deepcopy(memory.confidence)

    def memory(self) -> DraftLengthMemory | None:
        """What this answer learned, for the next one (None: nothing measured)."""
        if not self.adaptive or self.plain_ms is None or self.draft_token_ms is None:
            return None
        return DraftLengthMemory(
            plain_ms=self.plain_ms,
            draft_token_ms=self.draft_token_ms,
            row_ms=self.row_ms,
            catch_up_ms=self.catch_up_ms,
            reached=self._reached.copy(),
            rejected=self._rejected.copy(),
            step_times=tuple(self._step_times),
            cost_ratios=tuple(self._cost_ratios),
            drafted_tokens=self._drafted_tokens,
            drafted_ms=self._drafted_ms,
            drafting=self.drafting,
            probe_gap=self._probe_gap,
            any_accepted=self._accepted_total > 0,
            confidence=copy.deepcopy(self.confidence),
            draft_record=self._record.outcomes(),
        )

    def cutoff(self) -> ConfidenceCutoff | None:
        """The next draft's stop on low confidence (core/engine/draft_confidence.py);
        None with a fixed length or before the drafting steps' costs are fitted."""
        if not self.adaptive or self.n_max == 0:
            return None
        # The first drafts' costs include catching up on the baseline steps and
        # cold weights; the fitted slope is what one more drafted token costs.
        fit = self.step_cost_fit()
        if fit is None or self.plain_ms is None:
            return None
        # A token is worth the time one takes at the current rate, never more than
        # a plain step's (plain decoding is always available).
        token_ms = self.plain_ms
        if self._drafted_tokens > 0:
            token_ms = min(token_ms, self._drafted_ms / self._drafted_tokens)
        return ConfidenceCutoff(self.confidence, token_ms, fit[1])

    def next_length(self) -> int:
        """How many tokens the next step should draft (0: a plain step)."""
        if self.n_max == 0 or not self.adaptive:
            return self.n_max
        if self.plain_ms is None or (
            self.draft_token_ms is None
            and self._plain_run < _BASELINE_STEPS
            and not self._baseline_known
        ):
            return 0  # measure the baseline first; a plain step costs nothing extra
        if self.draft_token_ms is None:
            return self._clamp(_FIRST_DRAFT)
        if self._off_margin is not None:
            return 0
        if not self.drafting:
            self._probing = True
            if self._probe_at_start:
                self._probe_at_start = False
                best_length, best_speedup = self.best_length()
                if best_speedup >= _TRIAL_IF_AT_LEAST:
                    self._trial = True
                    return max(best_length, self._clamp(_PROBE_DRAFT))
            elif self._until_probe > 0 or not self._probe_affordable():
                self._probing = False
                return 0
            return self._clamp(_PROBE_DRAFT)
        if (
            self._drafted_steps
            and self._plain_run == 0
            and (
                self._drafted_steps % _REMEASURE_EVERY == 0
                or (self._measures_own_baseline() and self._drafted_steps in _EARLY_REMEASURES)
            )
        ):
            return 0
        best = self.best_length()[0]
        if self._judging_cold_start():
            # The first drafts' times are cold (slow), and the per-token model
            # spreads a drafting step's fixed cost over its tokens, so it reads
            # short drafts as the cheapest, and the fitted line needs a few steps.
            # So until then the draft's own record sets a floor: the run it just
            # had, and after a fully kept draft, back up to the first probe's
            # length by doubling. Without it, from a cold start a fully kept
            # (or 7 of 8) first draft went to 2-token drafts (51 ms for 3 tokens
            # against a plain 15 ms step) and often off, on prompts where fixed 16
            # ran at 1.3x plain.
            floor = self._last_accepted
            if self._last_fully_kept:
                floor = max(self._last_length, min(2 * self._last_length, _FIRST_DRAFT))
            best = max(best, min(floor, self.n_max))
        if self._last_fully_kept and not self._record_decides():
            # Positions past the drafts measured lately have little data and
            # acceptance comes in runs: after a fully kept draft, explore longer.
            lengths, speedups = self._expected_speedups()
            worth = (lengths <= 2 * self._last_length) & (
                speedups >= speedups.max() * _EXPLORE_TOLERANCE
            )
            if worth.any():
                best = max(best, int(lengths[np.flatnonzero(worth)[-1]]))
        return max(best, self._clamp(_SHORTEST_DRAFT))

    def _judging_cold_start(self) -> bool:
        """Whether this is one of the first drafting steps of an answer that
        started without a previous answer's memory."""
        return not self.warm_start and self._drafted_steps < _COLD_START_STEPS

    def _measures_own_baseline(self) -> bool:
        """Whether the plain time comes from this answer's first, slow decodes (no
        memory, no hint)."""
        return not self.warm_start and not self._baseline_known

    def _record_decides(self) -> bool:
        """Whether the draft record holds enough tokens to stand in for the
        per-position model (its expected tokens, no tolerance, no exploring)."""
        return len(self._record) >= ENOUGH_TOKENS

    def _probe_affordable(self) -> bool:
        assert self.draft_token_ms is not None and self.plain_ms is not None
        catch_up = (
            self.catch_up_ms
            if self.catch_up_ms is not None
            else _CATCH_UP_SHARE * self.draft_token_ms
        )
        length = self._clamp(_PROBE_DRAFT)
        cost = self._plain_run * catch_up + length * (self.draft_token_ms + (self.row_ms or 0.0))
        return self._probe_spent_ms + cost <= _PROBE_BUDGET * self._elapsed_ms

    def record(
        self,
        n_drafted: int,
        n_accepted: int,
        draft_ms: float,
        verify_ms: float,
        confidences: list[float] | None = None,
        timed_in_full: bool = True,
    ) -> None:
        """Account one finished step (``confidences``: the draft's confidence in each
        drafted token, where a draft model gave one).

        ``timed_in_full``: whether the step's draft time includes the next draft's
        first decode, as a drafting step's does while the answer goes on. The
        answer's last step has none (nothing follows), nor has a probe taken while
        drafting was off (plain steps may follow it): one decode short, its time
        would read as a short draft being cheap. With every other step of the same
        length (on text the draft knows, the longest), the answers' last steps alone
        set the fitted slope: rewriting answers of 3-5 steps each ending in a short,
        cheap one made the slope 10% steep and 9-13-token drafts look as good as 16.
        Such a step's acceptance counts; its time only measures the verification.
        """
        if not self.adaptive or self.n_max == 0:
            return
        self._fit_cache = self._speedups_cache = None
        if confidences:
            self.confidence.record(confidences[:n_drafted], n_accepted)
        self._elapsed_ms += draft_ms + verify_ms
        if self._probing and self.plain_ms is not None:
            self._probe_spent_ms += max(draft_ms + verify_ms - self.plain_ms, 0.0)
            if n_drafted and self.draft_token_ms is not None and self._plain_run > 1:
                skipped_cost = max(draft_ms - n_drafted * self.draft_token_ms, 0.0)
                self.catch_up_ms = _blend(self.catch_up_ms, skipped_cost / self._plain_run)
        if n_drafted == 0:
            if self._off_margin is not None and self.plain_ms is not None:
                # Expected speed-ups scale with the plain time: judged against
                # this step's, does drafting still lose?
                margin, self._off_margin = self._off_margin, None
                if margin * verify_ms / self.plain_ms < 1.0:
                    self._switch_off()
                else:
                    self._losing_run = 0
            self._probing = False  # a probe that found nothing to draft
            self._trial = False
            # Without a draft the verification is exactly a plain decoding step.
            if self.draft_token_ms is None and self.plain_ms is not None:
                # The baseline steps: the answer's first decodes are slow, and
                # slowness is the noise here, so the fastest is the typical step.
                self.plain_ms = min(self.plain_ms, verify_ms)
            else:
                self.plain_ms = _blend(self.plain_ms, verify_ms)
            self._plain_run += 1
            self._until_probe -= 1
            return
        # After a run of plain steps the draft first catches up on the tokens it
        # missed; that is the probe's price, not what a drafted token costs, so
        # such a step can only lower the estimate (it is an upper bound).
        if timed_in_full and self.plain_ms is not None and self.draft_token_ms is not None:
            # Predicted before this step's timings update the model: an honest check.
            predicted = self._step_ms(n_drafted)
            self._cost_ratios.append((draft_ms + verify_ms) / float(predicted))
        if timed_in_full and self._plain_run <= 1:
            self._step_times.append((n_drafted, draft_ms + verify_ms))
        per_token = draft_ms / n_drafted
        # The draft's first decodes are slow too (its weights went cold while the
        # baseline was measured): over the first drafting steps, as for the
        # baseline, the fastest measurement is the typical one.
        first = self._drafted_steps < _BASELINE_STEPS
        if self.draft_token_ms is None:
            self.draft_token_ms = per_token
        elif timed_in_full:
            if first:
                self.draft_token_ms = min(self.draft_token_ms, per_token)
            elif self._plain_run <= 1 or per_token < self.draft_token_ms:
                self.draft_token_ms = _blend(self.draft_token_ms, per_token)
        self._drafted_steps += 1
        self._answer_drafted_steps += 1
        self._answer_accepted += n_accepted
        self._plain_run = 0
        if self.plain_ms is not None:
            # Verifying k + 1 rows never costs less than the one row of a plain step:
            # this keeps a plain time measured on a slow first step from flattering
            # every draft after it.
            self.plain_ms = min(self.plain_ms, verify_ms)
            extra_rows = max(verify_ms - self.plain_ms, 0.0) / n_drafted
            if first and self.row_ms is not None:
                self.row_ms = min(self.row_ms, extra_rows)
            else:
                self.row_ms = _blend(self.row_ms, extra_rows)
        self._count_acceptance(min(n_drafted, self.n_max), n_accepted)
        self._record.add_step(n_drafted, n_accepted)
        self._drafted_tokens = self._drafted_tokens * _RATE_DECAY + n_accepted + 1
        self._drafted_ms = self._drafted_ms * _RATE_DECAY + draft_ms + verify_ms
        self._last_length = n_drafted
        self._last_fully_kept = n_accepted >= n_drafted
        self._last_accepted = n_accepted

        speedup = self.best_length()[1]
        was_trial, self._trial = self._trial, False
        if (
            self._drafted_tokens >= _RATE_EVIDENCE_TOKENS
            and self.plain_ms is not None
            and not was_trial  # the rate is the last answer's hard stretch
        ):
            measured = self._drafted_tokens * self.plain_ms / self._drafted_ms
            if measured < _CLEAR_LOSS:
                speedup = min(speedup, measured)
        was_probe, self._probing = self._probing, False
        # A few drafted steps at an answer's opening are not enough to judge: the
        # draft's first decodes are often slow, and its first tokens the hardest.
        opening = (
            self._lenient_opening
            and self._answer_drafted_steps < _LENIENT_OPENING_STEPS
            and self._answer_accepted > 0
        )
        threshold = _CLEARLY_LOSING if opening else _MIN_SPEEDUP
        if was_probe:
            # Off is nearly for good for a model draft (probes are rare), so a probe
            # (the trial draft at an answer's start included) that leaves the
            # expectation at break-even resumes drafting; five losing steps switch it
            # off again if the stretch is still hard.
            threshold = _RESUME_SPEEDUP
        if was_trial:
            # The trial at an answer's start is one step of new text after a verdict
            # on the last answer's hardest stretch: it resumes drafting unless it
            # leaves the expectation below what earned it the trial (one fully kept
            # 9-token trial of a pair that paid 1.17x at fixed 4 left it at 0.99, and
            # the answer ran plain).
            threshold = _TRIAL_IF_AT_LEAST
        self._accepted_total += n_accepted
        if self._accepted_total == 0:
            # Not one drafted token kept yet: no early leniency for such a draft.
            threshold = _MIN_SPEEDUP
        losing = speedup < threshold and self._drafted_steps >= _BASELINE_STEPS
        # While drafting, a verdict must hold for a few steps in a row: acceptance
        # comes in runs, and a pair that pays 1.5x over an answer often has a
        # stretch of rejections that makes both the model and the measured rate
        # dip below plain for a step or two. A draft that never had a token kept
        # is judged at once.
        self._losing_run = self._losing_run + 1 if losing else 0
        if losing and self.drafting and self._accepted_total > 0:
            if self._losing_run >= _LOSING_STEPS:
                # Confirmed by a plain step first: the verdict compares drafting
                # steps timed now with a plain time that follows the fast side of
                # earlier ones, and while the machine runs slow (another process,
                # a hot CPU) drafting looks worse than it is. A chat answer in a
                # slow stretch (fixed 16 at 50 t/s against 59 a round before)
                # switched off after six steps and ran plain at 0.85 of fixed 4.
                # A plain step is what switching off would take next anyway.
                self._off_margin = speedup / threshold
            losing = False
        if losing and self.drafting:
            self._switch_off()
        elif losing:
            if was_probe:
                self._probe_gap = min(self._probe_gap * 2, _MAX_PROBE_GAP)
            self._until_probe = self._probe_gap
        else:
            self.drafting = True
            self._probe_gap = _FIRST_PROBE_GAP

    def _switch_off(self) -> None:
        self.times_switched_off += 1
        self.drafting = False
        self._lenient_opening = False  # a probe that resumes is judged as usual
        self._until_probe = self._probe_gap

    def _count_acceptance(self, n_drafted: int, n_accepted: int) -> None:
        self._reached *= _DECAY
        self._rejected *= _DECAY
        reached = min(n_accepted + 1, n_drafted)
        self._reached[:reached] += 1.0
        if n_accepted < n_drafted:
            self._rejected[n_accepted] += 1.0

    def survival(self) -> np.ndarray:
        """Estimated probability that draft position j (1-based index j-1) is kept."""
        if self.n_max == 0:
            return np.empty(0)
        pooled = self._rejected.sum() / self._reached.sum()
        hazards = (self._rejected + _POOL_WEIGHT * pooled) / (self._reached + _POOL_WEIGHT)
        return np.cumprod(1.0 - hazards)

    def best_length(self) -> tuple[int, float]:
        """The draft length to use (the longest within a tolerance of the best
        expected speed-up over plain), and the best speed-up (tokens per unit
        time relative to plain decoding)."""
        if self.plain_ms is None or self.draft_token_ms is None or self.n_max == 0:
            return self._clamp(_FIRST_DRAFT), 1.0
        lengths, speedup = self._expected_speedups()
        best = float(speedup.max())
        tolerance = _RECORD_LENGTH_TOLERANCE if self._record_decides() else _LENGTH_TOLERANCE
        longest = int(np.flatnonzero(speedup >= best * (1.0 - tolerance))[-1])
        # The best speed-up, not the chosen length's: whether to draft at all
        # depends on whether any length is expected to pay.
        return int(lengths[longest]), best

    def _expected_speedups(self) -> tuple[np.ndarray, np.ndarray]:
        """Each draft length 1 … n_max and its expected speed-up over plain decoding
        (0 below draft-min, which is never verified)."""
        if self._speedups_cache is None:
            lengths, speedups = self._compute_expected_speedups()
            lengths.flags.writeable = speedups.flags.writeable = False  # shared until the next step
            self._speedups_cache = lengths, speedups
        return self._speedups_cache

    def _compute_expected_speedups(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.plain_ms is not None and self.draft_token_ms is not None
        lengths = np.arange(1, self.n_max + 1)
        if self._record_decides():
            expected_tokens = self._record.tokens_per_step(self.n_max)
        else:
            expected_tokens = 1.0 + np.cumsum(self.survival())
        speedup = expected_tokens * self.plain_ms / self.expected_step_ms(lengths)
        speedup[lengths < self.n_min] = 0.0
        return lengths, speedup

    def _step_ms(self, lengths: np.ndarray | int) -> np.ndarray | float:
        """The cost model: a drafting step's time for each draft length."""
        assert self.plain_ms is not None and self.draft_token_ms is not None
        return self.plain_ms + lengths * (self.draft_token_ms + (self.row_ms or 0.0))

    def expected_step_ms(self, lengths: np.ndarray) -> np.ndarray:
        """A drafting step's expected time per draft length: the fitted line when the
        recent steps allow one, else the per-token model scaled by the calibration."""
        fit = self.step_cost_fit()
        if fit is None:
            return np.asarray(self._step_ms(lengths)) * self.calibration()
        intercept, slope = fit
        return intercept + lengths * slope

    def step_cost_fit(self) -> tuple[float, float] | None:
        """(intercept, slope) of the recent drafting steps' times against their draft
        length, or None with too few steps."""
        if self._fit_cache is None:
            self._fit_cache = (self._fit_step_costs(),)
        return self._fit_cache[0]

    def _fit_step_costs(self) -> tuple[float, float] | None:
        if len(self._step_times) < _MIN_FIT_STEPS or self.plain_ms is None:
            return None
        if self.draft_token_ms is None:
            return None
        lengths = np.array([k for k, _ in self._step_times], dtype=float)
        times = np.array([t for _, t in self._step_times])
        per_token = self.draft_token_ms + (self.row_ms or 0.0)
        first, second = _pairs(len(lengths))
        spread = lengths[second] - lengths[first]
        varied = spread != 0
        if varied.any():
            slopes = (times[second] - times[first])[varied] / spread[varied]
            # statistics' medians, not numpy's: right after a decode, llama.cpp's
            # threads still hold the cores, and each numpy call's fixed cost (a
            # median took 130 us there) is what this fit spends most.
            slope = statistics.median(slopes.tolist())
        else:
            slope = per_token  # one length only: the slope is not identifiable
        slope = min(max(slope, _SLOPE_RANGE[0] * per_token), _SLOPE_RANGE[1] * per_token)
        intercept = max(statistics.median((times - slope * lengths).tolist()), self.plain_ms)
        return intercept, slope

    def calibration(self) -> float:
        """Measured over modelled time of the recent drafting steps (1: no data)."""
        if len(self._cost_ratios) < 3:
            return 1.0
        return float(np.clip(np.median(self._cost_ratios), 0.8, 1.5))

    def _clamp(self, length: int) -> int:
        return min(max(length, self.n_min), self.n_max)


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of n fitted steps; n never exceeds the fit's window."""
    return np.triu_indices(n, 1)
