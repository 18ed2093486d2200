"""Verification: which drafted tokens the target keeps, and its own next token.

Two exact schemes, chosen by ``DraftSettings.verification``:

* **speculative** (default at temperature > 0): Leviathan et al. 2023 / Chen et
  al. 2023. The draft *samples* token d from its processed distribution q; the
  target's processed distribution p of the same position accepts it with
  probability min(1, p(d)/q(d)); a rejection resamples from the normalised residual
  max(0, p - q) (a ``target_correction``), and a fully accepted draft adds a bonus
  sample from p. Each emitted token is then an exact sample of p. A token is kept
  with probability sum(min(p, q)), which for a good draft stays high when sampling
  (0.97 on the demo pair at temperature 0.8, against 0.63 for sample-and-match).
* **match** (and every greedy answer): llama.cpp's sample-and-match. The draft
  proposes its argmax and the target samples each row with its native sampler;
  a draft token is kept while it equals that sample. Exact too, and it draws one
  random number per emitted token as plain decoding does, so a seed gives the same
  answer with and without speculation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.engine.config import RANDOM_SEED, SamplingSettings
from core.engine.distribution import Distribution, IdArray, PenaltyWindow, SamplerChain
from core.engine.events import Provenance
from core.engine.model import LoadedModel
from core.engine.sampling import TargetSampler

_NO_TOKENS: IdArray = np.empty(0, dtype=np.int64)


@dataclass
class Draft:
    """What a drafter proposes for one step.

    Attributes:
        tokens: the proposed tokens, in order.
        probabilities: the draft's probability of each token (shown to the user).
        distributions: for speculative sampling, the distribution q each token was
            sampled from; empty for greedy and match drafts.
        confidences: the draft model's top probability at each position, before
            the token was chosen (what the adaptive mode's early stop learns from);
            empty for n-gram drafts.
    """

    tokens: list[int] = field(default_factory=list)
    probabilities: list[float | None] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


def residual(p: Distribution, q: Distribution) -> Distribution:
    """The normalised max(0, p - q): where a rejected position resamples from.

    Its support lies inside p's. When p and q are (numerically) equal a rejection
    has probability 0; should one still happen through float rounding, p itself
    is the right fallback.
    """
    mass = np.maximum(p.probs - q.probs_of(p.ids), 0.0)
    total = float(mass.sum())
    if total <= 1e-12:
        return p
    keep = mass > 0
    return Distribution(p.ids[keep], mass[keep] / total)


def accept_or_resample(
    p: Distribution, q: Distribution, token: int, rng: np.random.Generator
) -> tuple[int, bool]:
    """One position of speculative sampling for a ``token`` drawn from ``q``.

    Returns:
        (token, True) when the draft token is kept, otherwise (a sample of the
        residual, False).
    """
    q_token = q.prob(token)
    p_token = p.prob(token)
    # q_token > 0 for a token drawn from q; the guard keeps a bad caller from
    # dividing by zero and treats such a token as never proposable.
    if q_token > 0.0 and rng.random() * q_token < p_token:
        return token, True
    return residual(p, q).sample(rng), False


class Verifier(Protocol):
    """Chooses the emitted tokens of one step from the target's output rows."""

    seed: int

    def remember_prompt(self, tokens: list[int]) -> None: ...

    def verify(self, draft: Draft) -> list[tuple[int, Provenance]]:
        """Rows 0..len(draft) hold the target's logits after the newest history token
        and after each draft token. Returns the kept draft tokens, then the target's
        own token (unless every row was a kept draft and nothing follows)."""
        ...

    def close(self) -> None: ...


def _target_provenance(draft: Draft, row: int) -> Provenance:
    if not draft.tokens:
        return Provenance.TARGET_ONLY
    return Provenance.TARGET_CORRECTION if row < len(draft) else Provenance.TARGET_BONUS


class MatchVerifier:
    """Sample-and-match with the target's native llama.cpp sampler (also greedy)."""

    def __init__(self, model: LoadedModel, settings: SamplingSettings) -> None:
        self._sampler = TargetSampler(model, settings)
        self.seed = self._sampler.seed

    def remember_prompt(self, tokens: list[int]) -> None:
        self._sampler.remember_prompt(tokens)

    def verify(self, draft: Draft) -> list[tuple[int, Provenance]]:
        picked: list[tuple[int, Provenance]] = []
        greedy = self._sampler.greedy_rows(len(draft) + 1)
        for row in range(len(draft) + 1):
            token = greedy[row] if greedy is not None else self._sampler.pick(row)
            if row < len(draft) and token == draft.tokens[row]:
                picked.append((token, Provenance.DRAFT_ACCEPTED))
                continue
            picked.append((token, _target_provenance(draft, row)))
            break
        return picked

    def close(self) -> None:
        self._sampler.close()


class SpeculativeSampling:
    """Shared state of one speculative-sampling answer: the chain's settings, the
    repetition-penalty window and one seeded random stream for draft and target,
    so a seed reproduces an answer given the same draft lengths."""

    def __init__(self, settings: SamplingSettings) -> None:
        self.settings = settings
        self.seed = (
            settings.seed if settings.seed != RANDOM_SEED else random.SystemRandom().getrandbits(32)
        )
        self.rng = np.random.default_rng(self.seed)
        self.penalties = PenaltyWindow(settings.repeat_last_n)
        self._uses_penalty = settings.repeat_penalty != 1.0 and settings.repeat_last_n != 0

    def penalised(self, extra: list[int]) -> IdArray:
        """Tokens the repeat penalty applies to after ``extra`` (none without one)."""
        if not self._uses_penalty:
            return _NO_TOKENS
        return self.penalties.ids_with(extra)


class SpeculativeVerifier:
    """Speculative sampling against the target's processed distributions.

    A draft without distributions (n-gram lookup) is deterministic, so its q is
    one-hot: the token is kept with probability p(d), and a rejection samples p
    with d removed.
    """

    def __init__(self, model: LoadedModel, state: SpeculativeSampling) -> None:
        self._model = model
        self._state = state
        self._chain = SamplerChain(state.settings, model.n_vocab)
        self.seed = state.seed

    def remember_prompt(self, tokens: list[int]) -> None:
        self._state.penalties.extend(tokens)

    def verify(self, draft: Draft) -> list[tuple[int, Provenance]]:
        rng = self._state.rng
        picked: list[tuple[int, Provenance]] = []
        for row in range(len(draft) + 1):
            p = self._chain.distribution(
                self._model.logits(row), self._state.penalised(draft.tokens[:row])
            )
            if row == len(draft):
                token = p.sample(rng)
                picked.append((token, _target_provenance(draft, row)))
                break
            proposed = draft.tokens[row]
            q = (
                draft.distributions[row]
                if row < len(draft.distributions)
                else Distribution.one_hot(proposed)
            )
            token, kept = accept_or_resample(p, q, proposed, rng)
            if kept:
                picked.append((token, Provenance.DRAFT_ACCEPTED))
                continue
            picked.append((token, Provenance.TARGET_CORRECTION))
            break
        self._state.penalties.extend(token for token, _ in picked)
        return picked

    def close(self) -> None:
        """Nothing native to free."""
