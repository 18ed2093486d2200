"""Does the conversation plus the answer fit the context? Said with the numbers.

The window checks before sending and offers choices (a new chat, dropping the
oldest turns); nothing here truncates on its own. Counting tokens is the
caller's (the worker tokenises through the model's template, asynchronously),
so the search for how many turns to drop is written once as a generator that
asks for counts, driven by a sync and an async counter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass

from core.chat.messages import count_turns, drop_oldest_turns
from core.engine.chat_template import ChatMessage

TokenCounter = Callable[[Sequence[ChatMessage]], int]
AsyncTokenCounter = Callable[[Sequence[ChatMessage]], Awaitable[int]]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


@dataclass(frozen=True)
class ContextFit:
    """Prompt tokens plus the answer budget against the context size.

    ``dropped_turns`` is how many of the oldest turns were left out of the prompt.
    """

    prompt_tokens: int
    answer_budget: int
    n_ctx: int
    dropped_turns: int = 0

    @property
    def needed(self) -> int:
        return self.prompt_tokens + self.answer_budget

    @property
    def fits(self) -> bool:
        return self.needed <= self.n_ctx

    @property
    def overflow(self) -> int:
        """Tokens over the context (0 when it fits)."""
        return max(self.needed - self.n_ctx, 0)

    @property
    def spare(self) -> int:
        """Tokens left after prompt and answer (0 when it does not fit)."""
        return max(self.n_ctx - self.needed, 0)

    def sentence(self) -> str:
        """E.g. "This conversation is 3,912 tokens; with room for a 512-token answer it
        exceeds the 4,096-token context by 328."." The room is what the window keeps for
        an answer (its length setting, at most a quarter of the context), not the
        length setting itself."""
        subject = "This conversation"
        if self.dropped_turns == 1:
            subject = "Without its oldest turn, this conversation"
        elif self.dropped_turns:
            subject = f"Without its {self.dropped_turns:,} oldest turns, this conversation"
        opening = (
            f"{subject} is {_plural(self.prompt_tokens, 'token')}; "
            f"with room for a {self.answer_budget:,}-token answer it"
        )
        if self.fits:
            return (
                f"{opening} fits the {self.n_ctx:,}-token context "
                f"({_plural(self.spare, 'token')} to spare)."
            )
        return f"{opening} exceeds the {self.n_ctx:,}-token context by {self.overflow:,}."


def check_context_fit(
    messages: Sequence[ChatMessage], count_tokens: TokenCounter, n_ctx: int, answer_budget: int
) -> ContextFit:
    return ContextFit(count_tokens(messages), answer_budget, n_ctx)


# The search asks for counts by yielding candidate prompts and returns its answer.
_Search = Generator[list[ChatMessage], int, ContextFit | None]


def _fewest_drops(messages: Sequence[ChatMessage], n_ctx: int, answer_budget: int) -> _Search:
    """Binary search for the fewest oldest turns to drop; fewer turns never need more tokens."""

    def fit_for(n: int, tokens: int) -> ContextFit:
        return ContextFit(tokens, answer_budget, n_ctx, dropped_turns=n)

    most = count_turns(messages) - 1
    if most < 0:
        return None
    best = fit_for(most, (yield drop_oldest_turns(messages, most)))
    if not best.fits:
        return None  # even the last message alone, with the answer, is too long
    low, high = 0, most  # invariant: dropping `high` fits, dropping fewer than `low` does not
    while low < high:
        middle = (low + high) // 2
        candidate = fit_for(middle, (yield drop_oldest_turns(messages, middle)))
        if candidate.fits:
            high, best = middle, candidate
        else:
            low = middle + 1
    return best


def fewest_turns_to_drop(
    messages: Sequence[ChatMessage], count_tokens: TokenCounter, n_ctx: int, answer_budget: int
) -> ContextFit | None:
    """The fit after dropping the fewest oldest turns that makes it fit, or None if none does.

    ``drop_oldest_turns(messages, fit.dropped_turns)`` is then the prompt to send.
    """
    search = _fewest_drops(messages, n_ctx, answer_budget)
    try:
        candidate = next(search)
        while True:
            candidate = search.send(count_tokens(candidate))
    except StopIteration as done:
        result: ContextFit | None = done.value
        return result


async def fewest_turns_to_drop_async(
    messages: Sequence[ChatMessage],
    count_tokens: AsyncTokenCounter,
    n_ctx: int,
    answer_budget: int,
) -> ContextFit | None:
    """``fewest_turns_to_drop`` with an async counter (e.g. ``EngineWorker.tokenize_chat``)."""
    search = _fewest_drops(messages, n_ctx, answer_budget)
    try:
        candidate = next(search)
        while True:
            candidate = search.send(await count_tokens(candidate))
    except StopIteration as done:
        result: ContextFit | None = done.value
        return result
