"""The readout's first line says how much of the prompt came from the cache."""

from __future__ import annotations

from core.cli.readout import format_readout
from core.engine.events import GenerationStats
from tests.support.synthetic_events import synthetic_stats


def _stats(n_prompt: int, reused: int) -> GenerationStats:
    return synthetic_stats(10, n_prompt=n_prompt, n_prompt_reused=reused, prompt_ms=0.12)


def test_a_prompt_mostly_from_the_cache_says_so() -> None:
    first = format_readout(_stats(37, 36)).splitlines()[0]
    assert first.startswith("encoded    1 tokens in")
    assert first.endswith("t/s (36 more reused from the cache)")
    fresh = format_readout(_stats(37, 0)).splitlines()[0]
    assert fresh.startswith("encoded   37 tokens in") and fresh.endswith(" t/s")
