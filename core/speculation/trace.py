"""One answer's speculation, accumulated step by step (Qt-free).

The window feeds each :class:`StepEvent` in as it arrives, with its arrival time;
the stats panel reads numbers and plot series from here at its own pace, and a
stored answer is rebuilt from the store's ``(event_to_dict(step), at_s)`` rows.

``add_step`` costs O(tokens in the step + draft length) whatever the length of
the answer: every series grows by appending to a numpy buffer and every total is
a running sum, so a 20,000-token answer costs no more per step than a short one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.engine.events import (
    EmittedToken,
    FinishedEvent,
    Provenance,
    RejectedToken,
    StepEvent,
    event_from_dict,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TokenInfo:
    """One emitted token as the view shows it.

    ``step_index`` (0-based) is the step that produced the token.
    ``draft_position`` (1-based) is the token's place in that step's draft: the
    n-th accepted draft token has position n, and the target token that ended
    the step has the position of the draft token it replaced (correction) or the
    one past the end of the draft (bonus). None for ``target_only``.
    ``rejected_before`` holds, on a correction, the drafts the target threw away
    at that place; the view shows them ghosted just before this token.
    """

    id: int
    text: str
    provenance: Provenance
    step_index: int
    draft_position: int | None
    draft_probability: float | None
    rejected_before: tuple[RejectedToken, ...] = ()


@dataclass(frozen=True)
class RejectedDraft:
    """Draft tokens one step threw away; they belong in front of token ``before_token``."""

    step_index: int
    before_token: int
    tokens: tuple[RejectedToken, ...]


class _Buffer:
    """A numpy array that grows by doubling, so appending is amortised O(1)."""

    def __init__(self, dtype: type[np.float64] | type[np.int64], capacity: int = 256) -> None:
        self._data: npt.NDArray[Any] = np.zeros(capacity, dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _reserve(self, size: int) -> None:
        if size <= len(self._data):
            return
        grown = np.zeros(max(size, 2 * len(self._data)), dtype=self._data.dtype)
        grown[: self._size] = self._data[: self._size]
        self._data = grown

    def append(self, value: float) -> None:
        self._reserve(self._size + 1)
        self._data[self._size] = value
        self._size += 1

    def append_repeated(self, value: float, count: int) -> None:
        self._reserve(self._size + count)
        self._data[self._size : self._size + count] = value
        self._size += count

    def bump_prefix(self, count: int) -> None:
        """Add one to the first ``count`` entries (a per-position tally), growing as needed."""
        if count <= 0:
            return
        if count > self._size:
            self._reserve(count)
            self._size = count
        self._data[:count] += 1

    def bump(self, index: int) -> None:
        if index >= self._size:
            self._reserve(index + 1)
            self._size = index + 1
        self._data[index] += 1

    def view(self) -> npt.NDArray[Any]:
        # Read-only: readers (plots) may keep the array; later appends write past
        # its end or into a new buffer, so what they hold never changes under them.
        out = self._data[: self._size]
        out.flags.writeable = False
        return out


def _ratio(numerator: npt.NDArray[Any], denominator: npt.NDArray[Any]) -> FloatArray:
    result = np.zeros(len(denominator), dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


def _padded_sum(arrays: Sequence[npt.NDArray[Any]]) -> IntArray:
    size = max((len(array) for array in arrays), default=0)
    total = np.zeros(size, dtype=np.int64)
    for array in arrays:
        total[: len(array)] += array
    return total


class AnswerTrace:
    """Everything the window shows about how one answer was speculated.

    Times (``at_s``) are seconds since the answer started (the user pressed
    send), as the store keeps them. Tokens that arrive in one step share one
    arrival time, which is what makes speculative output bursty.
    """

    def __init__(self) -> None:
        self._tokens: list[TokenInfo] = []
        self._text_parts: list[str] = []
        self._text_cache = ""
        self._text_cached_upto = 0
        self._rejected: list[RejectedDraft] = []
        # Rejected drafts wait here for the correction that replaced them: with a
        # stop string the engine may hold a step's tokens back to a later event.
        self._pending_rejections: deque[tuple[int, tuple[RejectedToken, ...]]] = deque()
        # The run of draft tokens not yet closed by a target token (spans events
        # only when tokens were held back).
        self._run_step: int | None = None
        self._run_length = 0

        self._n_steps = 0
        self._n_target_passes = 0
        self._n_drafted = 0
        self._n_accepted = 0
        self._step_at_s = _Buffer(np.float64)
        # Tokens drafted per step (0: a plain step): what the adaptive length chose.
        self._draft_lengths = _Buffer(np.int64)
        self._tokens_after_step = _Buffer(np.int64)
        self._verified_step_index = _Buffer(np.int64)
        self._verified_acceptance = _Buffer(np.float64)
        self._accepted_lengths = _Buffer(np.int64)
        self._proposed_at = _Buffer(np.int64)
        self._accepted_at = _Buffer(np.int64)
        self._token_arrival_s = _Buffer(np.float64, capacity=1024)
        self._token_latency_s = _Buffer(np.float64, capacity=1024)

        self._decode_start_s: float | None = None
        self._first_token_s: float | None = None
        self._last_arrival_s: float | None = None
        self._finished: FinishedEvent | None = None
        self._ended = False
        # perf_counter() minus at_s of the latest step: lets live_now_s() tell the
        # time on the caller's clock without the caller passing its clock in.
        self._clock_offset: float | None = None

    # -- feeding -----------------------------------------------------------------

    def add_step(self, step: StepEvent, at_s: float) -> list[TokenInfo]:
        """Take in one step that arrived ``at_s`` seconds into the answer; return its tokens."""
        step_index = self._n_steps
        self._n_steps += 1
        # The engine's last event after a cancel only flushes held-back text: no
        # model ran for it, so it is not a target pass.
        if step.n_drafted or step.draft_ms or step.verify_ms:
            self._n_target_passes += 1
        if step.n_drafted:
            self._n_drafted += step.n_drafted
            self._n_accepted += step.n_accepted
            self._verified_step_index.append(step_index)
            self._verified_acceptance.append(step.n_accepted / step.n_drafted)
            self._accepted_lengths.bump(step.n_accepted)
            self._proposed_at.bump_prefix(step.n_drafted)
            self._accepted_at.bump_prefix(step.n_accepted)
        if step.rejected:
            self._pending_rejections.append((step_index, step.rejected))

        infos: list[TokenInfo] = []
        for token in step.tokens:
            # One at a time: a correction's place is the number of tokens before it.
            info = self._place_token(token, step_index)
            self._tokens.append(info)
            self._text_parts.append(info.text)
            infos.append(info)

        if infos:
            if self._decode_start_s is None:
                # The first step's own draft and verify time is the best estimate of
                # when decoding began (after the prompt was processed).
                step_s = (step.draft_ms + step.verify_ms) / 1000
                self._decode_start_s = max(0.0, at_s - step_s)
                self._first_token_s = at_s
                previous = self._decode_start_s
            else:
                assert self._last_arrival_s is not None
                previous = self._last_arrival_s
            self._token_latency_s.append(max(0.0, at_s - previous))
            self._token_latency_s.append_repeated(0.0, len(infos) - 1)
            self._token_arrival_s.append_repeated(at_s, len(infos))
            self._last_arrival_s = at_s
        self._step_at_s.append(at_s)
        if step.n_drafted or step.draft_ms or step.verify_ms:
            self._draft_lengths.append(step.n_drafted)
        self._tokens_after_step.append(len(self._tokens))
        self._clock_offset = time.perf_counter() - at_s
        return infos

    def _place_token(self, token: EmittedToken, step_index: int) -> TokenInfo:
        if self._run_step is None:
            self._run_step = step_index
            self._run_length = 0
        run_step = self._run_step
        rejected_before: tuple[RejectedToken, ...] = ()
        if token.provenance is Provenance.DRAFT_ACCEPTED:
            self._run_length += 1
            position: int | None = self._run_length
        else:
            is_target_only = token.provenance is Provenance.TARGET_ONLY
            position = None if is_target_only else self._run_length + 1
            if token.provenance is Provenance.TARGET_CORRECTION and self._pending_rejections:
                rejected_step, rejected_before = self._pending_rejections.popleft()
                self._rejected.append(
                    RejectedDraft(rejected_step, len(self._tokens), rejected_before)
                )
            self._run_step = None
        return TokenInfo(
            id=token.id,
            text=token.text,
            provenance=token.provenance,
            step_index=run_step,
            draft_position=position,
            draft_probability=token.draft_probability,
            rejected_before=rejected_before,
        )

    def finish(self, finished: FinishedEvent | None) -> None:
        """The answer ended; ``None`` when the worker died before saying how."""
        self._finished = finished
        self._ended = True
        # Drafts whose correction never came (the answer stopped on it) go at the end.
        while self._pending_rejections:
            rejected_step, rejected = self._pending_rejections.popleft()
            self._rejected.append(RejectedDraft(rejected_step, len(self._tokens), rejected))

    @classmethod
    def from_stored(
        cls, steps: Sequence[tuple[dict[str, Any], float]], finished: dict[str, Any] | None
    ) -> AnswerTrace:
        """Rebuild a stored answer: ``steps`` as ``(event_to_dict(step), at_s)`` rows."""
        trace = cls()
        for data, at_s in steps:
            event = event_from_dict(data)
            if not isinstance(event, StepEvent):
                raise ValueError(f"expected a step event, got {data.get('type')!r}")
            trace.add_step(event, at_s)
        end = event_from_dict(finished) if finished is not None else None
        if end is not None and not isinstance(end, FinishedEvent):
            raise ValueError("the stored end of an answer is not a finished event")
        trace.finish(end)
        return trace

    # -- tokens ------------------------------------------------------------------

    @property
    def tokens(self) -> Sequence[TokenInfo]:
        return self._tokens

    @property
    def text(self) -> str:
        # Joined incrementally so repeated reads while streaming stay cheap.
        if self._text_cached_upto < len(self._text_parts):
            self._text_cache += "".join(self._text_parts[self._text_cached_upto :])
            self._text_cached_upto = len(self._text_parts)
        return self._text_cache

    @property
    def rejected_drafts(self) -> Sequence[RejectedDraft]:
        """Rejected drafts placed so far (those waiting for their correction come later)."""
        return self._rejected

    @property
    def finished(self) -> FinishedEvent | None:
        return self._finished

    @property
    def is_finished(self) -> bool:
        """True once :meth:`finish` was called, even when the worker died (finished None)."""
        return self._ended

    @property
    def n_steps(self) -> int:
        return self._n_steps

    @property
    def n_target_passes(self) -> int:
        return self._n_target_passes

    @property
    def draft_lengths(self) -> IntArray:
        """Tokens drafted by each target pass, in order (0 for a plain step)."""
        return self._draft_lengths.view()

    @property
    def n_drafted(self) -> int:
        return self._n_drafted

    @property
    def n_accepted(self) -> int:
        return self._n_accepted

    # -- live numbers ------------------------------------------------------------

    @property
    def ttft_s(self) -> float | None:
        """Seconds from the start of the answer to its first token; None before it."""
        return self._first_token_s

    @property
    def decode_start_s(self) -> float | None:
        return self._decode_start_s

    @property
    def last_arrival_s(self) -> float | None:
        return self._last_arrival_s

    @property
    def decode_duration_s(self) -> float:
        if self._decode_start_s is None or self._last_arrival_s is None:
            return 0.0
        return self._last_arrival_s - self._decode_start_s

    def live_now_s(self) -> float:
        """The current time on the answer's clock while it streams; its last arrival after."""
        last = self._last_arrival_s if self._last_arrival_s is not None else 0.0
        if self._ended or self._clock_offset is None:
            return last
        return max(last, time.perf_counter() - self._clock_offset)

    def rolling_tokens_per_second(self, now_s: float, window_s: float = 1.0) -> float:
        """Tokens that arrived in the ``window_s`` seconds up to ``now_s``, per second.

        The window never reaches back before decoding began, so the prompt's
        processing time does not dilute the first second's rate.
        """
        if self._decode_start_s is None:
            return 0.0
        span = min(window_s, now_s - self._decode_start_s)
        if span <= 0:
            return 0.0
        return (self._tokens_by(now_s) - self._tokens_by(now_s - window_s)) / span

    def _tokens_by(self, at_s: float) -> int:
        index = int(np.searchsorted(self._step_at_s.view(), at_s, side="right"))
        return int(self._tokens_after_step.view()[index - 1]) if index else 0

    @property
    def cumulative_tokens_per_second(self) -> float:
        """Tokens per second from the start of decoding to the latest arrival."""
        duration = self.decode_duration_s
        return len(self._tokens) / duration if duration > 0 else 0.0

    @property
    def acceptance(self) -> float:
        """Accepted drafts over verified drafts so far (llama.cpp's ``accept``)."""
        return self._n_accepted / self._n_drafted if self._n_drafted else 0.0

    @property
    def tokens_per_target_pass(self) -> float:
        passes = self._n_target_passes
        return len(self._tokens) / passes if passes else 0.0

    # -- plot series (read-only numpy views) --------------------------------------

    @property
    def acceptance_per_step(self) -> FloatArray:
        """Accepted / drafted for each step that verified a draft, in order."""
        return self._verified_acceptance.view()

    @property
    def verified_step_indices(self) -> IntArray:
        """The 0-based step index of each entry of :attr:`acceptance_per_step`."""
        return self._verified_step_index.view()

    @property
    def accepted_length_histogram(self) -> IntArray:
        """Entry n counts the steps that accepted exactly n draft tokens."""
        return self._accepted_lengths.view()

    @property
    def token_arrival_s(self) -> FloatArray:
        return self._token_arrival_s.view()

    @property
    def inter_token_latency_s(self) -> FloatArray:
        """Per token, the wait since the token before; 0 inside a step's burst.

        The first token's wait is counted from the start of decoding, not of the
        answer, so the prompt's processing time (the TTFT) does not dwarf the rest.
        """
        return self._token_latency_s.view()

    @property
    def draft_position_counts(self) -> tuple[IntArray, IntArray]:
        """(accepted, proposed): entry i counts the steps whose draft token i+1 was accepted,
        and those that proposed one."""
        proposed = self._proposed_at.view()
        accepted = np.zeros(len(proposed), dtype=np.int64)
        accepted_view = self._accepted_at.view()
        accepted[: len(accepted_view)] = accepted_view
        return accepted, proposed

    @property
    def acceptance_by_draft_position(self) -> FloatArray:
        """Entry i: how often draft token i+1 was accepted, out of how often it was proposed."""
        accepted, proposed = self.draft_position_counts
        return _ratio(accepted, proposed)


class ConversationTrace:
    """The same numbers across several answers of one conversation.

    Series are concatenated in answer order; histograms and per-position
    tallies are summed.
    Computed on demand from the answers' buffers, so a live answer in the list is
    always current.
    """

    def __init__(self, traces: Sequence[AnswerTrace]) -> None:
        self.traces = list(traces)

    @property
    def n_tokens(self) -> int:
        return sum(len(trace.tokens) for trace in self.traces)

    @property
    def acceptance(self) -> float:
        drafted = sum(trace.n_drafted for trace in self.traces)
        accepted = sum(trace.n_accepted for trace in self.traces)
        return accepted / drafted if drafted else 0.0

    @property
    def tokens_per_target_pass(self) -> float:
        passes = sum(trace.n_target_passes for trace in self.traces)
        return self.n_tokens / passes if passes else 0.0

    @property
    def cumulative_tokens_per_second(self) -> float:
        duration = sum(trace.decode_duration_s for trace in self.traces)
        return self.n_tokens / duration if duration > 0 else 0.0

    @property
    def mean_ttft_s(self) -> float | None:
        ttfts = [trace.ttft_s for trace in self.traces if trace.ttft_s is not None]
        return sum(ttfts) / len(ttfts) if ttfts else None

    @property
    def acceptance_per_step(self) -> FloatArray:
        return np.concatenate([np.zeros(0), *(trace.acceptance_per_step for trace in self.traces)])

    @property
    def answer_starts(self) -> IntArray:
        """Index into :attr:`acceptance_per_step` where each answer's steps begin."""
        lengths = [len(trace.acceptance_per_step) for trace in self.traces]
        return np.cumsum([0, *lengths[:-1]], dtype=np.int64) if lengths else np.zeros(0, np.int64)

    @property
    def accepted_length_histogram(self) -> IntArray:
        return _padded_sum([trace.accepted_length_histogram for trace in self.traces])

    @property
    def inter_token_latency_s(self) -> FloatArray:
        return np.concatenate(
            [np.zeros(0), *(trace.inter_token_latency_s for trace in self.traces)]
        )

    @property
    def draft_position_counts(self) -> tuple[IntArray, IntArray]:
        pairs = [trace.draft_position_counts for trace in self.traces]
        return (
            _padded_sum([accepted for accepted, _ in pairs]),
            _padded_sum([proposed for _, proposed in pairs]),
        )

    @property
    def acceptance_by_draft_position(self) -> FloatArray:
        accepted, proposed = self.draft_position_counts
        return _ratio(accepted, proposed)
