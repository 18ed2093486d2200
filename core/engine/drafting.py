"""Draft sources: propose the next few tokens cheaply for the target to verify."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from core.engine.config import DraftSettings
from core.engine.distribution import ChosenTokenProbability, SamplerChain, top_probability
from core.engine.draft_confidence import ConfidenceCutoff
from core.engine.model import DecodeCancelledError, LoadedModel
from core.engine.verification import Draft, SpeculativeSampling

# A draft decode slower than this is made cancellable from within (see _append).
SLOW_DECODE_S = 0.05
# llama.cpp renormalises the draft's top probability over this many candidates.
P_MIN_CANDIDATES = 10


class Drafter(Protocol):
    def propose(
        self, history: list[int], max_tokens: int, cutoff: ConfidenceCutoff | None = None
    ) -> Draft:
        """Up to ``max_tokens`` tokens that may follow ``history`` (its last token is
        the newest, not yet verified one); a model draft also stops where ``cutoff``
        says its confidence is too low to pay."""
        ...

    def rollback(self, history_without_last: list[int]) -> None:
        """The target kept ``history_without_last``: drop what disagrees with it."""
        ...

    def catch_up(self, history: list[int]) -> None:
        """Start what the next ``propose(history, ...)`` would do first (a model
        draft decodes the tokens its cache lacks), so that on a GPU it runs while
        the engine reports the step that just ended."""
        ...


class ModelDrafter:
    """Drafting with a small model, stopping early below ``p_min``.

    Greedy (temperature 0, or sample-and-match verification): each token is the
    draft's argmax and its reported probability is the draft's softmax probability
    of it. With ``sampling`` (speculative sampling) each token is sampled from the
    draft's distribution after the target's sampler chain, and that distribution is
    handed to the verifier.

    A draft whose vocabulary is shorter than the target's (llama.cpp allows 128
    fewer tokens) cannot decode the target's last ids: each such id in the history
    reaches the draft as a stand-in, the first token of the draft's own spelling of
    its text. Positions stay aligned, and the target still verifies every token.
    """

    def __init__(
        self,
        model: LoadedModel,
        settings: DraftSettings,
        target_vocab_size: int,
        sampling: SpeculativeSampling | None = None,
        target_piece: Callable[[int], bytes] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._model = model
        # Drafting stops at the next token once set, so a cancel never waits for a
        # whole draft.
        self._cancel = cancel
        self._slow = False
        self._needs_stand_ins = target_vocab_size > model.n_vocab
        self._target_piece = target_piece
        self._stand_ins: dict[int, int] = {}
        self._p_min = settings.p_min
        self._target_vocab_size = target_vocab_size
        self._sampling = sampling
        # The target cannot verify draft-only token ids, so q never proposes them.
        self._chain = (
            SamplerChain(sampling.settings, min(model.n_vocab, target_vocab_size))
            if sampling is not None
            else None
        )
        self._confidence = ChosenTokenProbability(model.n_vocab)
        # Set by catch_up: the draft's cache holds exactly these ids, and its logits
        # are those after the last one (nothing has decoded since).
        self._caught_up: list[int] | None = None

    def draft_ids(self, history: list[int]) -> list[int]:
        """``history`` as the draft can decode it (see the class docstring)."""
        if not self._needs_stand_ins:
            return history
        n_vocab = self._model.n_vocab
        return [t if t < n_vocab else self._stand_in(t) for t in history]

    def _stand_in(self, token: int) -> int:
        stand_in = self._stand_ins.get(token)
        if stand_in is None:
            piece = self._target_piece(token) if self._target_piece else b""
            text = piece.decode("utf-8", "replace")
            spelled = self._model.tokenize(text, add_special=False, parse_special=False)
            stand_in = spelled[0] if spelled and 0 <= spelled[0] < self._model.n_vocab else 0
            self._stand_ins[token] = stand_in
        return stand_in

    def prefill(self, prompt: list[int], cancel: threading.Event | None = None) -> None:
        """Decode the prompt into the draft's cache ahead of the first step."""
        self._caught_up = None
        if len(prompt) < self._model.n_ctx:
            self._model.prefill(self.draft_ids(prompt), cancel=cancel)

    def propose(
        self, history: list[int], max_tokens: int, cutoff: ConfidenceCutoff | None = None
    ) -> Draft:
        model = self._model
        draft = Draft()
        history = self.draft_ids(history)
        # The draft needs history plus max_tokens - 1 drafted tokens in its cache.
        max_tokens = min(max_tokens, model.n_ctx - len(history) + 1)
        if max_tokens <= 0:
            return draft
        caught_up, self._caught_up = self._caught_up, None
        if caught_up != history and not self._decode_missing(history):
            return draft
        if self._sampling is not None:
            self._draft_sampled(draft, max_tokens, cutoff)
        else:
            self._draft_greedy(draft, max_tokens, cutoff)
        return draft

    def catch_up(self, history: list[int]) -> None:
        ids = self.draft_ids(history)
        self._caught_up = None
        # propose drafts nothing into a full context, so it needs no catching up.
        if len(ids) < self._model.n_ctx and self._decode_missing(ids):
            self._caught_up = ids

    def _decode_missing(self, history: list[int]) -> bool:
        """One batch for whatever the cache lacks, ending with the newest token (after
        a fully accepted step, the last draft token plus the bonus token); False
        when a cancel stopped it."""
        model = self._model
        shared = min(model.common_prefix_length(history), len(history) - 1)
        model.forget_from(shared)
        return self._append(history[shared:])

    def _below_p_min(self, logits: npt.NDArray[np.float32]) -> bool:
        """p-min looks at the draft's own confidence before anything is drawn, so
        stopping here never depends on the sample and keeps sampling exact."""
        return self._p_min > 0.0 and top_probability(logits, P_MIN_CANDIDATES) < self._p_min

    def _draft_sampled(
        self, draft: Draft, max_tokens: int, cutoff: ConfidenceCutoff | None
    ) -> None:
        """Each token sampled from the draft's processed distribution q."""
        model, sampling, chain = self._model, self._sampling, self._chain
        assert sampling is not None and chain is not None
        while True:
            logits = model.logits(-1)
            if self._below_p_min(logits):
                return
            q = chain.distribution(logits, sampling.penalised(draft.tokens))
            # The cutoff's confidence is the top probability of what the token is
            # about to be drawn from.
            confidence = float(q.probs.max())
            if cutoff is not None and not cutoff.admits(confidence):
                return
            token = q.sample(sampling.rng)
            draft.distributions.append(q)
            self._add(draft, token, q.prob(token), confidence)
            if len(draft) >= max_tokens or model.is_end_of_generation(token):
                return
            if self._cancelled() or not self._append([token]):
                return

    def _draft_greedy(self, draft: Draft, max_tokens: int, cutoff: ConfidenceCutoff | None) -> None:
        """Each token the draft's argmax, reported with its softmax probability.

        Without a cutoff nothing waits for that probability, so the next token's
        decode is started first: on a GPU the exponentials over the vocabulary then
        run while the device decodes.
        """
        model = self._model
        while True:
            logits = model.logits(-1)
            if self._below_p_min(logits):
                return
            token = int(logits.argmax())
            if token >= self._target_vocab_size:
                return  # a draft-only token id: the target cannot verify it
            self._confidence.capture(logits, token)
            last = len(draft) + 1 >= max_tokens or model.is_end_of_generation(token)
            if cutoff is None and not last and not self._cancelled():
                decoded = self._append([token])
                confidence = self._confidence.result()
                self._add(draft, token, confidence, confidence)
                if not decoded:
                    return
                continue
            confidence = self._confidence.result()
            if cutoff is not None and not cutoff.admits(confidence):
                return
            self._add(draft, token, confidence, confidence)
            if last or self._cancelled() or not self._append([token]):
                return

    @staticmethod
    def _add(draft: Draft, token: int, probability: float, confidence: float) -> None:
        draft.tokens.append(token)
        draft.probabilities.append(probability)
        draft.confidences.append(confidence)

    def _cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _append(self, tokens: list[int]) -> bool:
        """Decode into the draft's cache; False when a cancel stopped the decode.

        Decodes slower than ``SLOW_DECODE_S`` (a busy machine, a big draft) get the
        cancel event, so a cancel never waits long for a draft token.
        """
        started = time.perf_counter()
        try:
            self._model.append(tokens, cancel=self._cancel if self._slow else None)
        except DecodeCancelledError:
            return False
        self._slow = time.perf_counter() - started > SLOW_DECODE_S
        return True

    def rollback(self, history_without_last: list[int]) -> None:
        self._caught_up = None
        self._model.forget_from(
            self._model.common_prefix_length(self.draft_ids(history_without_last))
        )


class NgramDrafter:
    """Prompt lookup: find the latest earlier occurrence of the last n tokens and
    propose what followed it. Shines when the answer quotes the prompt (code edits,
    summaries, extraction); needs no second model."""

    def __init__(self, settings: DraftSettings) -> None:
        self._sizes = range(settings.ngram_max, settings.ngram_min - 1, -1)

    def propose(
        self, history: list[int], max_tokens: int, cutoff: ConfidenceCutoff | None = None
    ) -> Draft:
        """The proposal is deterministic: speculative sampling verifies it as a
        one-hot q, and it carries no probability (no model drafted it)."""
        if max_tokens <= 0:
            return Draft()
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
                proposal = [int(t) for t in tokens[start : start + max_tokens]]
                return Draft(proposal, [None] * len(proposal))
        return Draft()

    def rollback(self, history_without_last: list[int]) -> None:
        """Nothing cached."""

    def catch_up(self, history: list[int]) -> None:
        """Nothing to decode."""


class NoDrafter:
    """Plain decoding: the baseline every speed-up is measured against."""

    def propose(
        self, history: list[int], max_tokens: int, cutoff: ConfidenceCutoff | None = None
    ) -> Draft:
        return Draft()

    def rollback(self, history_without_last: list[int]) -> None:
        """Nothing cached."""

    def catch_up(self, history: list[int]) -> None:
        """Nothing to decode."""
