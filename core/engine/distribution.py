"""llama.cpp's sampler chain in numpy: the processed distribution behind a sample.

Speculative sampling needs the probabilities themselves (the draft's q and the
target's p for every verified row), which llama.cpp's native samplers do not hand
out. ``SamplerChain`` reproduces them with llama.cpp's semantics (see
``src/llama-sampler.cpp``): the repetition penalty over the last ``repeat_last_n``
tokens, then top-k, typical-p, top-p, min-p and temperature in ``--sampling-seq``
order, each keeping at least one candidate, then a softmax over what is left.

Cost matters: it runs for every drafted and every verified position. Reading the
logits through a numpy view and working on the few top candidates keeps a row at
tens of microseconds; a full softmax over a 150k vocabulary alone is ~150 us.
When top-k is the first filter that cuts candidates (the default chain) only
the top ``k`` (plus penalised tokens) are ever looked at; other orders fall back
to whole-vocabulary passes that are still vectorised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.engine.config import SamplingSettings

FloatArray = npt.NDArray[np.float64]
IdArray = npt.NDArray[np.int64]

# Tokens more than this many nats below the best are ignored when estimating a
# softmax probability for display and p-min: each has under 1e-7 of the best
# token's probability. Exponentiating the whole vocabulary instead would cost up to
# ~0.6 ms per drafted token, a tenth of a draft decode on a small model.
_NEGLIGIBLE_NATS = 16.0


@dataclass(frozen=True)
class Distribution:
    """A probability distribution over token ids, stored sparsely.

    ``ids`` are distinct token ids and ``probs`` their probabilities (summing to 1);
    any other token has probability 0.
    """

    ids: IdArray
    probs: FloatArray

    @classmethod
    def one_hot(cls, token: int) -> Distribution:
        """A deterministic proposal, e.g. an n-gram draft token."""
        return cls(np.array([token], dtype=np.int64), np.array([1.0]))

    def prob(self, token: int) -> float:
        hits = np.flatnonzero(self.ids == token)
        return float(self.probs[hits[0]]) if hits.size else 0.0

    def probs_of(self, tokens: IdArray) -> FloatArray:
        """Probabilities of ``tokens`` (0 where outside the support)."""
        order = np.argsort(self.ids)
        sorted_ids = self.ids[order]
        where = np.searchsorted(sorted_ids, tokens)
        where = np.minimum(where, sorted_ids.size - 1)
        found = sorted_ids[where] == tokens
        return np.where(found, self.probs[order][where], 0.0)

    def sample(self, rng: np.random.Generator) -> int:
        cumulative = np.cumsum(self.probs)
        # Scale by the total so float error in the normalisation cannot fall off the end.
        index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return int(self.ids[min(index, self.ids.size - 1)])


class PenaltyWindow:
    """The tokens llama.cpp's penalties sampler remembers: the last ``last_n`` of the
    prompt and the answer so far (``last_n`` < 0: all of them; 0: none)."""

    def __init__(self, last_n: int) -> None:
        self._last_n = last_n
        self._tokens: deque[int] = deque(maxlen=last_n if last_n > 0 else None)

    def extend(self, tokens: Iterable[int]) -> None:
        if self._last_n != 0:
            self._tokens.extend(tokens)

    def ids_with(self, extra: Sequence[int] = ()) -> IdArray:
        """Distinct tokens in the window after appending ``extra`` (not kept)."""
        if self._last_n == 0:
            return np.empty(0, dtype=np.int64)
        window = list(self._tokens) + list(extra)
        if self._last_n > 0:
            window = window[-self._last_n :]
        return np.unique(np.asarray(window, dtype=np.int64))

    def copy(self) -> PenaltyWindow:
        clone = PenaltyWindow(self._last_n)
        clone._tokens.extend(self._tokens)
        return clone


class SamplerChain:
    """Processed distributions for one sampling configuration (temperature > 0).

    Args:
        settings: the same settings the target's native sampler uses.
        n_vocab: tokens allowed; a draft with a bigger vocabulary passes the target's
            size so it never proposes a token the target cannot verify.
    """

    def __init__(self, settings: SamplingSettings, n_vocab: int) -> None:
        self.settings = settings
        self.n_vocab = n_vocab
        self._penalty = settings.repeat_penalty if settings.repeat_last_n != 0 else 1.0
        # The filters in chain order; inactive ones are dropped as llama.cpp makes
        # them empty samplers.
        steps: list[str] = []
        for letter in settings.sequence:
            if (
                (letter == "k" and settings.top_k > 0)
                or (letter == "y" and settings.typical_p < 1.0)
                or (letter == "p" and settings.top_p < 1.0)
                or (letter == "m" and settings.min_p > 0.0)
                or letter == "t"
            ):
                steps.append(letter)
        self._steps = steps
        truncating = [s for s in steps if s != "t"]
        # Temperature before top-k does not change which tokens are the top k.
        self._top_k_first = bool(truncating) and truncating[0] == "k"
        # Width of the logit band searched for the top-k candidates, adapted per call.
        self._band = 8.0

    def distribution(self, logits: npt.NDArray[np.float32], penalised: IdArray) -> Distribution:
        """The distribution llama.cpp's chain would sample ``logits`` from.

        Args:
            logits: the row's logits (a view; not modified).
            penalised: distinct token ids in the repetition-penalty window.
        """
        logits = logits[: self.n_vocab]
        # Without a penalty no token needs special treatment.
        penalised = penalised[:0] if self._penalty == 1.0 else penalised[penalised < logits.size]
        if self._top_k_first:
            ids = self._top_candidates(logits, self.settings.top_k + penalised.size)
            if penalised.size:
                ids = np.union1d(ids, penalised)
            values = logits[ids].astype(np.float32)
        else:
            ids = np.arange(logits.size, dtype=np.int64)
            values = logits.astype(np.float32)  # a copy: penalties change it
        if penalised.size:
            self._apply_penalty(ids, values, penalised)
        for step in self._steps:
            ids, values = self._apply(step, ids, values)
        return Distribution(ids, _softmax(values))

    def _apply_penalty(
        self, ids: IdArray, values: npt.NDArray[np.float32], penalised: IdArray
    ) -> None:
        """llama.cpp's repeat penalty: shrink positive logits, push negative ones down."""
        where = np.searchsorted(ids, penalised) if self._top_k_first else penalised
        hit = values[where]
        values[where] = np.where(hit <= 0, hit * self._penalty, hit / self._penalty)

    def _apply(
        self, step: str, ids: IdArray, values: npt.NDArray[np.float32]
    ) -> tuple[IdArray, npt.NDArray[np.float32]]:
        settings = self.settings
        if step == "t":
            return ids, values / np.float32(settings.temperature)
        if step == "k":
            if values.size > settings.top_k:
                keep = np.argpartition(values, -settings.top_k)[-settings.top_k :]
                ids, values = ids[keep], values[keep]
            return ids, values
        if step == "m":
            # llama.cpp: keep logits >= max + log(min_p), i.e. p >= min_p * p_max.
            keep = values >= values.max() + np.float32(np.log(settings.min_p))
            return ids[keep], values[keep]
        if step == "p":
            return self._top_p(ids, values, settings.top_p)
        return self._typical(ids, values, settings.typical_p)

    @staticmethod
    def _top_p(
        ids: IdArray, values: npt.NDArray[np.float32], top_p: float
    ) -> tuple[IdArray, npt.NDArray[np.float32]]:
        """Keep the most likely tokens until their probability reaches ``top_p``.

        Probabilities and their running sum are float32 as in llama.cpp, so the cut
        lands on the same token when the sum grazes ``top_p``.
        """
        shifted = np.exp(values - values.max())
        probs = shifted / np.cumsum(shifted, dtype=np.float32)[-1]  # sequential, like C
        band = 8.0
        while True:
            # Sort only the head of the distribution; widen it if it is too light.
            head = np.flatnonzero(values >= values.max() - band)
            order = head[np.argsort(-values[head], kind="stable")]
            cumulative = np.cumsum(probs[order], dtype=np.float32)
            if cumulative[-1] >= top_p or head.size == values.size:
                break
            band *= 2
        cut = int(np.searchsorted(cumulative, top_p, side="left")) + 1
        keep = order[: min(cut, order.size)]
        return ids[keep], values[keep]

    @staticmethod
    def _typical(
        ids: IdArray, values: npt.NDArray[np.float32], typical_p: float
    ) -> tuple[IdArray, npt.NDArray[np.float32]]:
        """Locally typical sampling: keep tokens whose surprise is closest to the
        entropy until their probability exceeds ``typical_p``."""
        probs = _softmax(values)
        with np.errstate(divide="ignore"):
            surprise = -np.log(probs)
        entropy = float(np.sum(np.where(probs > 0, probs * surprise, 0.0)))
        order = np.argsort(np.abs(surprise - entropy), kind="stable")
        cumulative = np.cumsum(probs[order])
        cut = int(np.searchsorted(cumulative, typical_p, side="right")) + 1
        keep = order[: min(cut, order.size)]
        return ids[keep], values[keep]

    def _top_candidates(self, logits: npt.NDArray[np.float32], k: int) -> IdArray:
        """Ids of the ``k`` largest logits, sorted by id.

        ``argpartition`` over a whole 49k-150k vocabulary costs ~1-2.5 ms; a
        comparison pass costs ~25-90 us, so first keep only the logits within a band
        below the maximum and partition those. The band adapts so that it usually
        holds a few times ``k`` tokens.
        """
        if k >= logits.size:
            return np.arange(logits.size, dtype=np.int64)
        top = float(logits.max())
        band = self._band
        while True:
            head = np.flatnonzero(logits >= top - band)
            if head.size >= k or not np.isfinite(band):
                break
            band = band * 2 if band < 1e4 else np.inf
        if head.size > 8 * k and band > 0.5:
            self._band = band * 0.75
        elif head.size < 2 * k:
            self._band = band * 1.5
        else:
            self._band = band
        if head.size > k:
            head = head[np.argpartition(logits[head], -k)[-k:]]
        return np.sort(head).astype(np.int64)


def _softmax(values: npt.NDArray[np.float32]) -> FloatArray:
    shifted = np.exp((values - values.max()).astype(np.float64))
    return shifted / shifted.sum()


def top_probability(logits: npt.NDArray[np.float32], candidates: int | None = None) -> float:
    """The softmax probability (temperature 1) of the most likely token.

    With ``candidates`` the softmax is over the top that many logits only, as
    llama.cpp's p-min renormalises over the draft's top 10.
    """
    top = logits.max()
    if candidates is None:
        # A drafted token's confidence, once per draft token: one subtract, one exp
        # and one float32 sum over the vocabulary cost ~40 us, where filtering a band
        # below the top first costs twice that (a flat distribution keeps most of it).
        shifted = logits - top
        np.exp(shifted, out=shifted)
        return float(1.0 / shifted.sum())  # float32's pairwise sum: ~1e-6 relative
    head = logits[np.flatnonzero(logits >= top - np.float32(_NEGLIGIBLE_NATS))]
    if head.size > candidates:
        head = np.partition(head, -candidates)[-candidates:]
    return float(1.0 / np.exp(head - top).sum(dtype=np.float64))


class ChosenTokenProbability:
    """The softmax probability (temperature 1) of a greedy draft's argmax, computed
    in two halves so that most of it runs while the device decodes the next token.

    ``capture`` copies what it needs out of llama.cpp's logits buffer, which the
    next decode overwrites (on a GPU that decode only queues work and returns); the
    exponentials and their sum then run on that copy in ``result``. The same
    value as ``top_probability(logits)`` when ``token`` is the argmax.
    """

    def __init__(self, n_vocab: int) -> None:
        self._shifted = np.empty(n_vocab, dtype=np.float32)

    def capture(self, logits: npt.NDArray[np.float32], token: int) -> None:
        np.subtract(logits, logits[token], out=self._shifted)

    def result(self) -> float:
        np.exp(self._shifted, out=self._shifted)
        return float(1.0 / self._shifted.sum())
