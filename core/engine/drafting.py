"""Draft sources: propose the next few tokens cheaply for the target to verify."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.engine.config import DraftSettings
from core.engine.model import LoadedModel

# llama.cpp renormalises the draft's top probability over this many candidates.
P_MIN_CANDIDATES = 10


class Drafter(Protocol):
    def propose(self, history: list[int], max_tokens: int) -> list[int]:
        """Up to ``max_tokens`` tokens that may follow ``history`` (its last token is
        the newest, not yet verified one)."""
        ...

    def rollback(self, history_without_last: list[int]) -> None:
        """The target kept ``history_without_last``: drop what disagrees with it."""
        ...


class ModelDrafter:
    """Greedy drafting with a small model, stopping early below ``p_min``."""

    def __init__(self, model: LoadedModel, settings: DraftSettings, target_vocab_size: int) -> None:
        self._model = model
        self._p_min = settings.p_min
        self._target_vocab_size = target_vocab_size

    def propose(self, history: list[int], max_tokens: int) -> list[int]:
        model = self._model
        # The draft needs history plus max_tokens - 1 drafted tokens in its cache.
        max_tokens = min(max_tokens, model.n_ctx - len(history) + 1)
        if max_tokens <= 0:
            return []
        # One batch for whatever the cache lacks, ending with the newest token: after
        # a fully accepted step that is the last draft token plus the bonus token.
        shared = min(model.common_prefix_length(history), len(history) - 1)
        model.forget_from(shared)
        model.append(history[shared:])
        drafted: list[int] = []
        while True:
            logits = model.logits(-1)
            token = int(np.argmax(logits))
            if self._p_min > 0.0 and self._top_probability(logits) < self._p_min:
                break
            if token >= self._target_vocab_size:
                break  # a draft-only token id: the target cannot verify it
            drafted.append(token)
            if len(drafted) >= max_tokens or model.is_end_of_generation(token):
                break
            model.append([token])
        return drafted

    @staticmethod
    def _top_probability(logits: np.ndarray) -> float:
        top = logits[np.argpartition(logits, -P_MIN_CANDIDATES)[-P_MIN_CANDIDATES:]]
        shifted = np.exp(top - top.max())
        return float(1.0 / shifted.sum())

    def rollback(self, history_without_last: list[int]) -> None:
        self._model.forget_from(self._model.common_prefix_length(history_without_last))


class NgramDrafter:
    """Prompt lookup: find the latest earlier occurrence of the last n tokens and
    propose what followed it. Shines when the answer quotes the prompt (code edits,
    summaries, extraction); needs no second model."""

    def __init__(self, settings: DraftSettings) -> None:
        self._sizes = range(settings.ngram_max, settings.ngram_min - 1, -1)

    def propose(self, history: list[int], max_tokens: int) -> list[int]:
        if max_tokens <= 0:
            return []
        tokens = np.asarray(history, dtype=np.int64)
        for size in self._sizes:
            if len(tokens) <= size:
                continue
            pattern = tokens[-size:]
            # Windows that start before the final n-gram itself and have a follower.
            windows = sliding_window_view(tokens[:-1], size)
            matches = np.flatnonzero((windows == pattern).all(axis=1))
            if matches.size:
                start = int(matches[-1]) + size
                return [int(t) for t in tokens[start : start + max_tokens]]
        return []

    def rollback(self, history_without_last: list[int]) -> None:
        """Nothing cached."""


class NoDrafter:
    """Plain decoding: the baseline every speed-up is measured against."""

    def propose(self, history: list[int], max_tokens: int) -> list[int]:
        return []

    def rollback(self, history_without_last: list[int]) -> None:
        """Nothing cached."""
