"""The readout's first line says how much of the prompt came from the cache."""

from __future__ import annotations

from core.cli.readout import format_readout
from core.engine.events import GenerationStats


def _stats(n_prompt: int, reused: int) -> GenerationStats:
    return GenerationStats(
        n_prompt=n_prompt,
        n_prompt_reused=reused,
        prompt_ms=0.12,
        n_predict=10,
        decode_ms=200.0,
        ttft_ms=20.0,
        n_steps=4,
        n_drafted=12,
        n_accept=6,
        draft_ms=80.0,
        verify_ms=100.0,
        accepted_length_histogram=(1, 1, 1, 1),
        draft_source="model",
        draft_max=4,
        seed=7,
    )


def test_a_prompt_mostly_from_the_cache_says_so() -> None:
    first = format_readout(_stats(37, 36)).splitlines()[0]
    assert first.startswith("encoded    1 tokens in")
    assert first.endswith("t/s (36 more reused from the cache)")
    fresh = format_readout(_stats(37, 0)).splitlines()[0]
    assert fresh.startswith("encoded   37 tokens in") and fresh.endswith(" t/s")
