"""The target's native llama.cpp sampler: plain decoding, greedy and sample-and-match.

Sample-and-match (``Verification.MATCH``, and every greedy answer) samples the
target at every drafted position with this sampler and accepts a draft token only
while it equals that sample. Each emitted token is therefore exactly a sample from
the target's (filtered) distribution given the accepted prefix, for any sampler
chain (top-k, top-p, min-p, penalties). A side effect we test: with the same seed
the random stream is consumed once per emitted token, as in plain decoding, so a
seed gives the same answer with and without speculation. Speculative sampling
(core/engine/verification.py) needs the probabilities themselves and computes them
in numpy instead (core/engine/distribution.py).
"""

from __future__ import annotations

import random

import llama_cpp
import numpy as np

from core.engine.config import MAX_SEED, RANDOM_SEED, SamplingSettings
from core.engine.model import LoadedModel

# Samplers that keep at least this many candidates, as llama.cpp's common code does.
_MIN_KEEP = 1


class TargetSampler:
    """Picks tokens from the target's output rows; one instance per answer.

    Greedy decoding without penalties reads logits through a numpy view and takes
    the argmax: no native sampler, no copy of the vocabulary.
    """

    def __init__(self, model: LoadedModel, settings: SamplingSettings) -> None:
        self._model = model
        self.settings = settings
        # A drawn seed stays below 0xFFFFFFFF, which llama.cpp would replace by a
        # fresh random one: the reported seed must reproduce the answer.
        self.seed = (
            settings.seed
            if settings.seed != RANDOM_SEED
            else random.SystemRandom().randint(0, MAX_SEED)
        )
        self._uses_penalties = settings.repeat_penalty != 1.0
        self._fast_greedy = settings.greedy and not self._uses_penalties
        self._chain: llama_cpp.llama_sampler_p | None = None
        if not self._fast_greedy:
            self._chain = self._build_chain()

    def _build_chain(self) -> llama_cpp.llama_sampler_p:
        settings = self.settings
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = llama_cpp.llama_sampler_chain_add
        if self._uses_penalties:
            add(
                chain,
                llama_cpp.llama_sampler_init_penalties(
                    self._model.n_vocab, settings.repeat_last_n, settings.repeat_penalty, 0.0, 0.0
                ),
            )
        if settings.greedy:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        for letter in settings.sequence:
            if letter == "k" and settings.top_k > 0:
                add(chain, llama_cpp.llama_sampler_init_top_k(settings.top_k))
            elif letter == "y" and settings.typical_p < 1.0:
                add(chain, llama_cpp.llama_sampler_init_typical(settings.typical_p, _MIN_KEEP))
            elif letter == "p" and settings.top_p < 1.0:
                add(chain, llama_cpp.llama_sampler_init_top_p(settings.top_p, _MIN_KEEP))
            elif letter == "m" and settings.min_p > 0.0:
                add(chain, llama_cpp.llama_sampler_init_min_p(settings.min_p, _MIN_KEEP))
            elif letter == "t":
                add(chain, llama_cpp.llama_sampler_init_temp(settings.temperature))
        add(chain, llama_cpp.llama_sampler_init_dist(self.seed))
        return chain

    def remember_prompt(self, tokens: list[int]) -> None:
        """Feed the prompt to the repetition penalty's history."""
        if self._chain is not None and self._uses_penalties:
            for token in tokens:
                llama_cpp.llama_sampler_accept(self._chain, token)

    def pick(self, row: int) -> int:
        """Sample the token for output row ``row`` and record it in the history."""
        if self._chain is None:
            return int(np.argmax(self._model.logits(row)))
        return int(llama_cpp.llama_sampler_sample(self._chain, self._model.context, row))

    def greedy_rows(self, count: int) -> list[int] | None:
        """The argmax of output rows 0..count-1 in one pass, for greedy decoding
        without penalties (None otherwise, or where the rows are not one block)."""
        if self._chain is not None:
            return None
        rows = self._model.logit_rows(count)
        return None if rows is None else rows.argmax(axis=1).tolist()

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
