"""The context check: prompt plus answer budget against n_ctx, said in a sentence."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.chat import (
    ContextFit,
    check_context_fit,
    drop_oldest_turns,
    fewest_turns_to_drop,
    fewest_turns_to_drop_async,
)
from core.engine.chat_template import ChatMessage


def test_the_sentence_of_an_overflow() -> None:
    fit = ContextFit(prompt_tokens=3912, answer_budget=512, n_ctx=4096)
    assert not fit.fits
    assert (fit.needed, fit.overflow, fit.spare) == (4424, 328, 0)
    assert fit.sentence() == (
        "This conversation is 3,912 tokens; with room for a 512-token answer it exceeds "
        "the 4,096-token context by 328."
    )


def test_the_sentence_of_a_fit() -> None:
    fit = ContextFit(prompt_tokens=1200, answer_budget=512, n_ctx=4096)
    assert fit.fits and fit.overflow == 0
    assert fit.sentence() == (
        "This conversation is 1,200 tokens; with room for a 512-token answer it fits "
        "the 4,096-token context (2,384 tokens to spare)."
    )
    exact = ContextFit(prompt_tokens=3584, answer_budget=512, n_ctx=4096)
    assert exact.fits and exact.sentence().endswith("(0 tokens to spare).")


def test_the_sentence_after_dropping_turns() -> None:
    one = ContextFit(prompt_tokens=3000, answer_budget=512, n_ctx=4096, dropped_turns=1)
    assert one.sentence().startswith("Without its oldest turn, this conversation is 3,000 tokens")
    three = ContextFit(prompt_tokens=3000, answer_budget=512, n_ctx=4096, dropped_turns=3)
    assert three.sentence().startswith("Without its 3 oldest turns, this conversation")


def _conversation(turns: int) -> list[ChatMessage]:
    messages = [ChatMessage("system", "sys")]
    for index in range(turns):
        messages += [ChatMessage("user", f"u{index}"), ChatMessage("assistant", f"a{index}")]
    return [*messages, ChatMessage("user", "last")]


class Counter:
    """Counts 100 tokens per message and remembers how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: Sequence[ChatMessage]) -> int:
        self.calls += 1
        return 100 * len(messages)


def test_check_context_fit_counts_with_the_callable() -> None:
    fit = check_context_fit(_conversation(3), Counter(), n_ctx=1000, answer_budget=256)
    assert (fit.prompt_tokens, fit.fits, fit.overflow) == (800, False, 56)


def test_fewest_turns_to_drop_finds_the_smallest_number() -> None:
    messages = _conversation(20)  # 1 system + 40 + 1 last = 42 messages, 21 turns
    counter = Counter()
    fit = fewest_turns_to_drop(messages, counter, n_ctx=2000, answer_budget=300)
    # 100 per message, 1700 allowed: 17 messages = system + last + 7 full turns + ... -> drop 13
    assert fit is not None
    assert fit.dropped_turns == 13 and fit.prompt_tokens == 1600 and fit.fits
    assert Counter()(drop_oldest_turns(messages, 13)) == 1600
    assert Counter()(drop_oldest_turns(messages, 12)) + 300 > 2000
    assert counter.calls <= 7  # a binary search, not one count per turn


def test_when_nothing_fits_there_is_no_plan() -> None:
    assert fewest_turns_to_drop(_conversation(3), Counter(), n_ctx=250, answer_budget=100) is None
    assert fewest_turns_to_drop([], Counter(), n_ctx=250, answer_budget=100) is None


def test_a_conversation_that_fits_drops_nothing() -> None:
    fit = fewest_turns_to_drop(_conversation(2), Counter(), n_ctx=4096, answer_budget=100)
    assert fit is not None and fit.dropped_turns == 0


def test_the_async_search_gives_the_same_answer() -> None:
    async def count(messages: Sequence[ChatMessage]) -> int:
        await asyncio.sleep(0)
        return 100 * len(messages)

    messages = _conversation(20)
    fit = asyncio.run(fewest_turns_to_drop_async(messages, count, n_ctx=2000, answer_budget=300))
    assert fit == fewest_turns_to_drop(messages, Counter(), n_ctx=2000, answer_budget=300)
