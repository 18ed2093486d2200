"""At temperature > 0 speculative output must follow the target's distribution."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy.stats import chi2_contingency

from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)

N_SAMPLES = 400
# Position 3 is reached through drafted, accepted and corrected tokens alike.
POSITIONS = 4


def sample_sequences(
    engine: SpeculativeEngine, drafting: DraftSettings, sampling: SamplingSettings, seeds: range
) -> list[tuple[int, ...]]:
    prompt = engine.tokenize("the cat and the dog")
    sequences = []
    for seed in seeds:
        settings = GenerationSettings(
            n_predict=POSITIONS,
            sampling=SamplingSettings(**{**sampling.__dict__, "seed": seed}),
            drafting=drafting,
        )
        sequences.append(tuple(collect(engine.generate(prompt, settings)).token_ids))
    return sequences


def token_at(sequence: tuple[int, ...], position: int) -> int:
    """The token at ``position``, or -1 where the answer had already ended (EOS)."""
    return sequence[position] if position < len(sequence) else -1


def homogeneity_p_value(first: list[int], second: list[int]) -> float:
    """Chi-square test that two samples come from one distribution; rare categories
    are pooled so every expected count is large enough for the test."""
    counts_a, counts_b = Counter(first), Counter(second)
    common = [t for t in counts_a.keys() | counts_b.keys() if counts_a[t] + counts_b[t] >= 10]
    table = [[counts_a[t] for t in common], [counts_b[t] for t in common]]
    rest_a = len(first) - sum(table[0])
    rest_b = len(second) - sum(table[1])
    if rest_a + rest_b >= 10:
        table[0].append(rest_a)
        table[1].append(rest_b)
    return float(chi2_contingency(table).pvalue)


SAMPLING = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)


@pytest.fixture(scope="module")
def plain_samples(tiny_engine: SpeculativeEngine) -> list[tuple[int, ...]]:
    return sample_sequences(
        tiny_engine, DraftSettings(source=DraftSource.NONE), SAMPLING, range(0, N_SAMPLES)
    )


def test_speculative_sampling_matches_plain_distribution(
    tiny_engine: SpeculativeEngine, plain_samples: list[tuple[int, ...]]
) -> None:
    speculative = sample_sequences(
        tiny_engine, DraftSettings(n_max=4), SAMPLING, range(10_000, 10_000 + N_SAMPLES)
    )
    for position in range(POSITIONS):
        p_value = homogeneity_p_value(
            [token_at(s, position) for s in plain_samples],
            [token_at(s, position) for s in speculative],
        )
        assert p_value > 0.001, f"token {position} distribution differs (p={p_value:.2e})"


def test_distribution_test_detects_a_different_distribution(
    tiny_engine: SpeculativeEngine, plain_samples: list[tuple[int, ...]]
) -> None:
    # The same check must reject samples drawn at another temperature, or the test
    # above would pass whatever the engine did.
    colder = SamplingSettings(temperature=0.6, top_k=0, top_p=1.0, min_p=0.0)
    other = sample_sequences(tiny_engine, DraftSettings(n_max=4), colder, range(20_000, 20_400))
    p_values = [
        homogeneity_p_value(
            [token_at(s, i) for s in plain_samples], [token_at(s, i) for s in other]
        )
        for i in range(POSITIONS)
    ]
    assert min(p_values) < 1e-4


def test_same_seed_gives_same_answer_with_and_without_speculation(
    tiny_engine: SpeculativeEngine,
) -> None:
    # Sample-and-match draws one random number per emitted token, like plain
    # decoding, so a seed reproduces the plain answer exactly.
    sampling = SamplingSettings(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
    prompt = tiny_engine.tokenize("people made time")
    for seed in (1, 2, 3, 4, 5):
        answers = [
            collect(
                tiny_engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=40,
                        sampling=SamplingSettings(**{**sampling.__dict__, "seed": seed}),
                        drafting=drafting,
                    ),
                )
            ).token_ids
            for drafting in (DraftSettings(source=DraftSource.NONE), DraftSettings(n_max=6))
        ]
        assert answers[0] == answers[1]


def test_repeat_penalty_applies_in_both_modes_alike(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("one two one two one two")
    sampling = SamplingSettings(temperature=0.0, repeat_penalty=1.5, repeat_last_n=32)
    plain, speculative = (
        collect(
            tiny_engine.generate(
                prompt, GenerationSettings(n_predict=60, sampling=sampling, drafting=drafting)
            )
        ).token_ids
        for drafting in (DraftSettings(source=DraftSource.NONE), DraftSettings(n_max=5))
    )
    unpenalised = collect(
        tiny_engine.generate(
            prompt,
            GenerationSettings(n_predict=60, sampling=SamplingSettings(temperature=0.0)),
        )
    ).token_ids
    assert plain == speculative
    assert plain != unpenalised
