"""A/B: one prompt decoded with the speculative settings and plainly, same sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.engine import ChatMessage, DraftSource, GenerationResult, GenerationSettings
from core.engine.config import RANDOM_SEED, Verification
from core.tune.runner import AnswerRunner

# A/B with a random seed still has to sample both answers alike.
AB_SEED = 1


@dataclass(frozen=True)
class ABResult:
    """Both answers of one A/B run.

    Attributes:
        identical: the two answers are the same tokens. Promised at temperature 0
            and with sample-and-match verification; with speculative sampling both
            answers are exact samples of the target but may differ.
    """

    speculative: GenerationResult
    plain: GenerationResult
    settings: GenerationSettings

    @property
    def speedup(self) -> float:
        plain = self.plain.stats.decode_tokens_per_second
        return self.speculative.stats.decode_tokens_per_second / plain if plain else 0.0

    @property
    def acceptance(self) -> float:
        return self.speculative.stats.acceptance

    @property
    def identical(self) -> bool:
        return self.speculative.token_ids == self.plain.token_ids

    @property
    def identity_promised(self) -> bool:
        """Whether the engine guarantees identical answers for these settings."""
        return (
            self.settings.sampling.greedy
            or self.settings.drafting.verification is Verification.MATCH
        )

    def slower_warning(self) -> str:
        """A sentence with the numbers when speculation lost, else ""."""
        if self.speedup >= 1.0:
            return ""
        return (
            f"Speculation is slower than plain decoding on this pair: "
            f"{self.speculative.stats.decode_tokens_per_second:.1f} vs "
            f"{self.plain.stats.decode_tokens_per_second:.1f} tokens/s "
            f"({self.speedup:.2f}x) at {self.acceptance * 100:.0f}% acceptance."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "speedup": self.speedup,
            "acceptance": self.acceptance,
            "identical": self.identical,
            "identity_promised": self.identity_promised,
            "speculative": self.speculative.to_dict(),
            "plain": self.plain.to_dict(),
        }


def plain_settings(settings: GenerationSettings) -> GenerationSettings:
    """The same request without drafting."""
    return replace(settings, drafting=replace(settings.drafting, source=DraftSource.NONE))


def with_fixed_seed(settings: GenerationSettings, seed: int = AB_SEED) -> GenerationSettings:
    """A random seed replaced by ``seed``, so several runs sample alike."""
    if settings.sampling.seed != RANDOM_SEED:
        return settings
    return replace(settings, sampling=replace(settings.sampling, seed=seed))


async def run_ab(
    runner: AnswerRunner, messages: Sequence[ChatMessage], settings: GenerationSettings
) -> ABResult:
    """Decode ``messages`` plainly and with ``settings``' drafting, plain first."""
    settings = with_fixed_seed(settings)
    prompt = await runner.tokenize_chat(messages)
    plain = await runner.answer(prompt, plain_settings(settings))
    speculative = await runner.answer(prompt, settings)
    return ABResult(speculative, plain, settings)
