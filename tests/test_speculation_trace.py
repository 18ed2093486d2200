"""AnswerTrace numbers on hand-made steps, where every value can be worked out by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.engine.events import (
    EmittedToken,
    FinishedEvent,
    GenerationStats,
    Provenance,
    RejectedToken,
    StepEvent,
    StopReason,
    event_to_dict,
)
from core.speculation import AnswerTrace, ConversationTrace, RejectedDraft

ACC = Provenance.DRAFT_ACCEPTED
COR = Provenance.TARGET_CORRECTION
BON = Provenance.TARGET_BONUS
ONLY = Provenance.TARGET_ONLY


def tok(text: str, provenance: Provenance, p: float | None = None) -> EmittedToken:
    return EmittedToken(ord(text[0]), text, provenance, p)


def rej(text: str, p: float | None = None) -> RejectedToken:
    return RejectedToken(ord(text[0]), text, p)


def step(
    tokens: list[EmittedToken],
    rejected: list[RejectedToken],
    n_drafted: int,
    n_accepted: int,
    draft_ms: float = 10.0,
    verify_ms: float = 20.0,
) -> StepEvent:
    return StepEvent(tuple(tokens), tuple(rejected), n_drafted, n_accepted, draft_ms, verify_ms)


# Four steps: 2 of 3 drafts accepted; 3 of 3 plus a bonus; 0 of 2; no draft at all.
STEPS = [
    (step([tok("A", ACC, 0.9), tok("B", ACC, 0.8), tok("C", COR)], [rej("X", 0.4)], 3, 2), 0.5),
    (step([tok("D", ACC, 0.7), tok("E", ACC), tok("F", ACC), tok("G", BON)], [], 3, 3), 0.6),
    (step([tok("H", COR)], [rej("Y", 0.3), rej("Z", 0.2)], 2, 0), 0.7),
    (step([tok("I", ONLY)], [], 0, 0, draft_ms=0.0, verify_ms=5.0), 1.8),
]


def stats() -> GenerationStats:
    return GenerationStats(
        n_prompt=12,
        n_prompt_reused=0,
        prompt_ms=400.0,
        n_predict=9,
        decode_ms=1330.0,
        ttft_ms=500.0,
        n_steps=4,
        n_drafted=8,
        n_accept=5,
        draft_ms=30.0,
        verify_ms=65.0,
        accepted_length_histogram=(1, 0, 1, 1),
        draft_source="draft_model",
        draft_max=3,
        seed=7,
    )


def built() -> AnswerTrace:
    trace = AnswerTrace()
    for event, at_s in STEPS:
        trace.add_step(event, at_s)
    trace.finish(FinishedEvent(StopReason.END_OF_GENERATION, stats()))
    return trace


def test_tokens_carry_step_and_draft_position() -> None:
    trace = built()
    assert trace.text == "ABCDEFGHI"
    assert [t.step_index for t in trace.tokens] == [0, 0, 0, 1, 1, 1, 1, 2, 3]
    assert [t.draft_position for t in trace.tokens] == [1, 2, 3, 1, 2, 3, 4, 1, None]
    assert [t.draft_probability for t in trace.tokens][:4] == [0.9, 0.8, None, 0.7]


def test_rejected_drafts_sit_before_their_correction() -> None:
    trace = built()
    assert list(trace.rejected_drafts) == [
        RejectedDraft(0, 2, (rej("X", 0.4),)),
        RejectedDraft(2, 7, (rej("Y", 0.3), rej("Z", 0.2))),
    ]
    assert trace.tokens[2].rejected_before == (rej("X", 0.4),)
    assert trace.tokens[7].rejected_before == (rej("Y", 0.3), rej("Z", 0.2))
    assert all(not t.rejected_before for i, t in enumerate(trace.tokens) if i not in (2, 7))


def test_totals() -> None:
    trace = built()
    assert trace.n_steps == 4
    assert trace.n_target_passes == 4
    assert trace.acceptance == pytest.approx(5 / 8)
    assert trace.tokens_per_target_pass == pytest.approx(9 / 4)
    assert trace.ttft_s == pytest.approx(0.5)
    # Decoding began the first step's 30 ms before its tokens arrived.
    assert trace.decode_start_s == pytest.approx(0.47)
    assert trace.cumulative_tokens_per_second == pytest.approx(9 / (1.8 - 0.47))
    assert trace.is_finished
    assert trace.finished is not None and trace.finished.stats == stats()


def test_exact_histogram_and_acceptance_by_position() -> None:
    trace = built()
    np.testing.assert_array_equal(trace.accepted_length_histogram, [1, 0, 1, 1])
    np.testing.assert_allclose(trace.acceptance_per_step, [2 / 3, 1.0, 0.0])
    np.testing.assert_array_equal(trace.verified_step_indices, [0, 1, 2])
    accepted, proposed = trace.draft_position_counts
    np.testing.assert_array_equal(proposed, [3, 3, 2])
    np.testing.assert_array_equal(accepted, [2, 2, 1])
    np.testing.assert_allclose(trace.acceptance_by_draft_position, [2 / 3, 2 / 3, 1 / 2])


def test_inter_token_latency_shows_the_bursts() -> None:
    trace = built()
    np.testing.assert_allclose(
        trace.inter_token_latency_s, [0.03, 0, 0, 0.1, 0, 0, 0, 0.1, 1.1], atol=1e-12
    )
    np.testing.assert_allclose(trace.token_arrival_s, [0.5] * 3 + [0.6] * 4 + [0.7, 1.8])


def test_rolling_rate_with_given_times() -> None:
    trace = built()
    # Window (0.0, 1.0] holds 8 tokens but reaches back before decoding began
    # (0.47 s), so it is only 0.53 s long.
    assert trace.rolling_tokens_per_second(1.0) == pytest.approx(8 / 0.53)
    assert trace.rolling_tokens_per_second(1.65) == pytest.approx(1.0)  # (0.65, 1.65]: H
    assert trace.rolling_tokens_per_second(1.69) == pytest.approx(1.0)
    assert trace.rolling_tokens_per_second(1.8) == pytest.approx(1.0)  # (0.8, 1.8]: I
    assert trace.rolling_tokens_per_second(1.75) == pytest.approx(0.0)
    assert trace.rolling_tokens_per_second(0.8, window_s=0.25) == pytest.approx(5 / 0.25)
    assert trace.rolling_tokens_per_second(0.3) == 0.0
    assert AnswerTrace().rolling_tokens_per_second(5.0) == 0.0


def test_empty_trace_is_all_zeros() -> None:
    trace = AnswerTrace()
    assert trace.acceptance == 0.0
    assert trace.tokens_per_target_pass == 0.0
    assert trace.cumulative_tokens_per_second == 0.0
    assert trace.ttft_s is None
    assert len(trace.acceptance_per_step) == 0
    assert len(trace.acceptance_by_draft_position) == 0
    assert trace.live_now_s() == 0.0


def test_from_stored_round_trip() -> None:
    original = built()
    assert original.finished is not None
    rows = [(event_to_dict(event), at_s) for event, at_s in STEPS]
    rebuilt = AnswerTrace.from_stored(rows, event_to_dict(original.finished))
    assert list(rebuilt.tokens) == list(original.tokens)
    assert list(rebuilt.rejected_drafts) == list(original.rejected_drafts)
    assert rebuilt.finished == original.finished
    for name in (
        "acceptance_per_step",
        "accepted_length_histogram",
        "inter_token_latency_s",
        "acceptance_by_draft_position",
    ):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(original, name))
    assert rebuilt.rolling_tokens_per_second(1.0) == original.rolling_tokens_per_second(1.0)


def test_from_stored_interrupted_answer() -> None:
    rows = [(event_to_dict(event), at_s) for event, at_s in STEPS[:1]]
    trace = AnswerTrace.from_stored(rows, None)
    assert trace.is_finished and trace.finished is None
    assert trace.text == "ABC"


def test_held_back_tokens_keep_their_step_and_position() -> None:
    # With a stop string the engine may deliver a step's tokens in a later event.
    trace = AnswerTrace()
    trace.add_step(step([tok("A", ACC)], [rej("X")], 3, 2), 0.1)
    infos = trace.add_step(step([tok("B", ACC), tok("C", COR), tok("D", ONLY)], [], 0, 0), 0.2)
    assert [(t.text, t.step_index, t.draft_position) for t in infos] == [
        ("B", 0, 2),
        ("C", 0, 3),
        ("D", 1, None),
    ]
    assert infos[1].rejected_before == (rej("X"),)


def test_rejections_without_correction_go_to_the_end() -> None:
    # The target's correction was the end-of-generation token, which is not emitted.
    trace = AnswerTrace()
    trace.add_step(step([tok("A", ACC)], [rej("X")], 2, 1), 0.1)
    assert list(trace.rejected_drafts) == []
    trace.finish(None)
    assert list(trace.rejected_drafts) == [RejectedDraft(0, 1, (rej("X"),))]


def test_flush_only_event_is_not_a_target_pass() -> None:
    trace = AnswerTrace()
    trace.add_step(step([tok("A", ONLY)], [], 0, 0, verify_ms=5.0), 0.1)
    trace.add_step(step([tok("B", ONLY)], [], 0, 0, draft_ms=0.0, verify_ms=0.0), 0.2)
    assert trace.n_target_passes == 1
    assert trace.tokens_per_target_pass == 2.0


def test_series_views_are_read_only_and_survive_growth() -> None:
    trace = AnswerTrace()
    trace.add_step(step([tok("A", ACC), tok("B", BON)], [], 1, 1), 0.1)
    held = trace.inter_token_latency_s
    with pytest.raises(ValueError):
        held[0] = 1.0
    for i in range(2000):
        trace.add_step(step([tok("C", ONLY)], [], 0, 0), 0.2 + i / 1000)
    assert len(held) == 2
    assert len(trace.inter_token_latency_s) == 2002


def test_conversation_aggregate() -> None:
    first = built()
    second = AnswerTrace()
    second.add_step(
        step([tok("a", ACC), tok("b", ACC), tok("c", ACC), tok("d", ACC)], [], 4, 4), 0.2
    )
    second.add_step(step([tok("e", COR)], [rej("f")], 1, 0), 0.3)
    conversation = ConversationTrace([first, second])
    assert conversation.n_tokens == 14
    assert conversation.acceptance == pytest.approx((5 + 4) / (8 + 5))
    assert conversation.tokens_per_target_pass == pytest.approx(14 / 6)
    np.testing.assert_array_equal(conversation.accepted_length_histogram, [2, 0, 1, 1, 1])
    np.testing.assert_allclose(conversation.acceptance_per_step, [2 / 3, 1, 0, 1, 0])
    np.testing.assert_array_equal(conversation.answer_starts, [0, 3])
    accepted, proposed = conversation.draft_position_counts
    np.testing.assert_array_equal(proposed, [5, 4, 3, 1])
    np.testing.assert_array_equal(accepted, [3, 3, 2, 1])
    assert len(conversation.inter_token_latency_s) == 14
    assert conversation.mean_ttft_s == pytest.approx((0.5 + 0.2) / 2)
    empty = ConversationTrace([])
    assert empty.acceptance == 0.0
    assert len(empty.acceptance_per_step) == 0
    assert len(empty.answer_starts) == 0


def test_add_step_cost_does_not_grow_with_the_answer() -> None:
    # 20,000 steps (~60,000 tokens): the last thousand steps cost what the first did.
    # CPU time of this thread, best of three blocks, so a busy machine does not count.
    def block_cost(trace: AnswerTrace, first_index: int) -> float:
        best = float("inf")
        for repeat in range(3):
            started = time.thread_time()
            for i in range(300):
                at_s = (first_index + repeat * 300 + i) * 0.01
                trace.add_step(step([tok("a", ACC), tok("b", ACC), tok("c", COR)], [], 3, 2), at_s)
            best = min(best, time.thread_time() - started)
        return best

    trace = AnswerTrace()
    early = block_cost(trace, 0)
    for i in range(20_000):
        trace.add_step(step([tok("a", ACC), tok("b", ACC), tok("c", COR)], [], 3, 2), 10 + i * 0.01)
    late = block_cost(trace, 30_000)
    assert late < 3 * early + 0.005, (early, late)
    assert len(trace.tokens) == 3 * (20_000 + 1800)
