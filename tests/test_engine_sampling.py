"""At temperature > 0 speculative output must follow the target's distribution.

Plain decoding samples with llama.cpp's native sampler chain; speculative sampling
uses the numpy chain for p and q and the accept/residual step. Per position the
two sets of samples must pass a homogeneity test, and the same test must reject
samples from a deliberately broken engine or another temperature.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    Provenance,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine import verification as verification_module
from core.engine.distribution import Distribution
from core.engine.draft_confidence import ConfidenceCalibration, ConfidenceCutoff
from core.engine.draft_length import DraftLengthController
from tests.conftest import TinyModels
from tests.support.devices import ON_GPU
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

N_SAMPLES = 400
# Position 3 is reached through drafted, accepted and corrected tokens alike.
POSITIONS = 4
PROMPT = "the cat and the dog"
PLAIN = DraftSettings(source=DraftSource.NONE)
# Fixed length: every position is drafted, so every position tests the verifier.
SPECULATIVE = DraftSettings(n_max=4, adaptive=False)


def sampling_at(temperature: float) -> SamplingSettings:
    return SamplingSettings(
        temperature=temperature,
        top_k=20,
        top_p=0.9,
        min_p=0.05,
        repeat_penalty=1.3,
        repeat_last_n=16,
    )


@pytest.fixture(scope="module")
def weak_engine(
    tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SpeculativeEngine]:
    """The tiny target with a draft that disagrees often, so rejections and residual
    samples are frequent enough for a wrong residual to show."""
    folder: Path = tmp_path_factory.mktemp("weak-draft")
    draft = write_tiny_model(
        folder / "tiny-weak-draft.gguf", TinyModelSpec(seed=5), perturb_from=0, perturb_scale=0.3
    )
    # One thread: these tiny models decode in ~0.1 ms, and on a loaded machine two
    # threads waiting on each other make every decode a hundred times slower.
    engine = SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=1), ModelConfig(draft, n_threads=1)
    )
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def tiny_engine(tiny_models: TinyModels) -> Iterator[SpeculativeEngine]:
    """The shared tiny pair (a draft that mostly agrees), on one thread as above."""
    engine = SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=1),
        ModelConfig(tiny_models.draft, n_threads=1),
    )
    yield engine
    engine.close()


def sample_sequences(
    engine: SpeculativeEngine,
    drafting: DraftSettings,
    sampling: SamplingSettings,
    seeds: range,
    prompt: list[int] | None = None,
    kinds: Counter[Provenance] | None = None,
) -> list[tuple[int, ...]]:
    prompt = prompt or engine.tokenize(PROMPT)
    sequences = []
    for seed in seeds:
        settings = GenerationSettings(
            n_predict=POSITIONS, sampling=replace(sampling, seed=seed), drafting=drafting
        )
        result = collect(engine.generate(prompt, settings))
        if kinds is not None:
            kinds.update(token.provenance for token in result.tokens)
        sequences.append(tuple(result.token_ids))
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
    if len(table[0]) < 2:
        return 1.0  # one category only: both samples are the same constant
    return float(chi2_contingency(table).pvalue)


def position_p_values(first: list[tuple[int, ...]], second: list[tuple[int, ...]]) -> list[float]:
    return [
        homogeneity_p_value([token_at(s, i) for s in first], [token_at(s, i) for s in second])
        for i in range(POSITIONS)
    ]


_plain_cache: dict[float, list[tuple[int, ...]]] = {}


def plain_samples(engine: SpeculativeEngine, temperature: float) -> list[tuple[int, ...]]:
    if temperature not in _plain_cache:
        _plain_cache[temperature] = sample_sequences(
            engine, PLAIN, sampling_at(temperature), range(N_SAMPLES)
        )
    return _plain_cache[temperature]


@pytest.mark.parametrize("temperature", [0.5, 0.8, 1.0])
def test_speculative_sampling_matches_plain_distribution(
    weak_engine: SpeculativeEngine, temperature: float
) -> None:
    kinds: Counter[Provenance] = Counter()
    speculative = sample_sequences(
        weak_engine,
        SPECULATIVE,
        sampling_at(temperature),
        range(10_000, 10_000 + N_SAMPLES),
        kinds=kinds,
    )
    # Both branches of the verifier must really run, or the test proves little.
    assert kinds[Provenance.DRAFT_ACCEPTED] > 100
    assert kinds[Provenance.TARGET_CORRECTION] > 100
    for position, p_value in enumerate(
        position_p_values(plain_samples(weak_engine, temperature), speculative)
    ):
        assert p_value > 0.001, f"token {position} distribution differs (p={p_value:.2e})"


def test_distribution_test_detects_a_wrong_residual(
    weak_engine: SpeculativeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A classic bug: after a rejection, resample from p instead of max(0, p - q).
    def from_p(p: Distribution, q: Distribution) -> Distribution:
        return p

    monkeypatch.setattr(verification_module, "residual", from_p)
    broken = sample_sequences(
        weak_engine, SPECULATIVE, sampling_at(1.0), range(20_000, 20_000 + N_SAMPLES)
    )
    assert min(position_p_values(plain_samples(weak_engine, 1.0), broken)) < 1e-4


def test_distribution_test_detects_another_temperature(weak_engine: SpeculativeEngine) -> None:
    other = sample_sequences(
        weak_engine, SPECULATIVE, sampling_at(0.5), range(30_000, 30_000 + N_SAMPLES)
    )
    assert min(position_p_values(plain_samples(weak_engine, 1.0), other)) < 1e-4


def test_ngram_drafts_are_verified_exactly_when_sampling(tiny_engine: SpeculativeEngine) -> None:
    # N-gram proposals are deterministic: verified as a one-hot q. The prompt
    # repeats its start after the target's own greedy continuation, so the lookup
    # proposes that continuation and the target often keeps it.
    start = tiny_engine.tokenize("one two")
    greedy = GenerationSettings(n_predict=8, sampling=SamplingSettings(temperature=0.0))
    prompt = start + collect(tiny_engine.generate(start, greedy)).token_ids + start[1:]
    sampling = SamplingSettings(temperature=0.8, top_k=20, top_p=0.95, min_p=0.05)
    ngram = DraftSettings(source=DraftSource.NGRAM, n_max=4, adaptive=False)
    kinds: Counter[Provenance] = Counter()
    speculative = sample_sequences(
        tiny_engine, ngram, sampling, range(40_000, 40_000 + N_SAMPLES), prompt, kinds
    )
    plain = sample_sequences(tiny_engine, PLAIN, sampling, range(N_SAMPLES), prompt)
    assert kinds[Provenance.DRAFT_ACCEPTED] > 100
    assert kinds[Provenance.TARGET_CORRECTION] > 100
    for position, p_value in enumerate(position_p_values(plain, speculative)):
        assert p_value > 0.001, f"token {position} distribution differs (p={p_value:.2e})"


def test_draft_probabilities_are_reported(weak_engine: SpeculativeEngine) -> None:
    prompt = weak_engine.tokenize(PROMPT)
    for sampling in (sampling_at(0.8), SamplingSettings(temperature=0.0)):
        result = collect(
            weak_engine.generate(
                prompt, GenerationSettings(n_predict=40, sampling=sampling, drafting=SPECULATIVE)
            )
        )
        accepted = [t for t in result.tokens if t.provenance is Provenance.DRAFT_ACCEPTED]
        assert accepted and result.rejected
        for token in [*accepted, *result.rejected]:
            assert token.draft_probability is not None
            assert 0.0 < token.draft_probability <= 1.0
        others = [t for t in result.tokens if t.provenance is not Provenance.DRAFT_ACCEPTED]
        assert all(t.draft_probability is None for t in others)


@pytest.mark.skipif(
    ON_GPU,
    reason="GPU batch kernels round differently from single-token ones (README: "
    "exactness on GPUs; tests/benchmarks/greedy_divergence.py measures it)",
)
def test_match_mode_gives_the_same_answer_with_and_without_speculation(
    tiny_engine: SpeculativeEngine,
) -> None:
    # Sample-and-match draws one random number per emitted token, like plain
    # decoding, so a seed reproduces the plain answer exactly, whatever draft
    # lengths the guard picks.
    sampling = SamplingSettings(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
    prompt = tiny_engine.tokenize("people made time")
    for seed in (1, 2, 3, 4, 5):
        answers = [
            collect(
                tiny_engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=40, sampling=replace(sampling, seed=seed), drafting=drafting
                    ),
                )
            ).token_ids
            for drafting in (
                PLAIN,
                DraftSettings(n_max=6, verification="match"),  # type: ignore[arg-type]
                DraftSettings(n_max=6, verification="match", adaptive=False),  # type: ignore[arg-type]
            )
        ]
        assert answers[0] == answers[1] == answers[2]


def test_speculative_mode_reproduces_an_answer_for_a_seed(tiny_engine: SpeculativeEngine) -> None:
    # With fixed draft lengths the random stream is consumed identically.
    sampling = replace(sampling_at(0.8), seed=11)
    prompt = tiny_engine.tokenize(PROMPT)
    settings = GenerationSettings(n_predict=30, sampling=sampling, drafting=SPECULATIVE)
    first = collect(tiny_engine.generate(prompt, settings))
    second = collect(tiny_engine.generate(prompt, settings))
    assert first.token_ids == second.token_ids
    assert first.stats.seed == 11


def test_repeat_penalty_applies_in_both_modes_alike(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("one two one two one two")
    sampling = SamplingSettings(temperature=0.0, repeat_penalty=1.5, repeat_last_n=32)
    plain, speculative = (
        collect(
            tiny_engine.generate(
                prompt, GenerationSettings(n_predict=60, sampling=sampling, drafting=drafting)
            )
        ).token_ids
        for drafting in (PLAIN, DraftSettings(n_max=5, adaptive=False))
    )
    unpenalised = collect(
        tiny_engine.generate(
            prompt,
            GenerationSettings(n_predict=60, sampling=SamplingSettings(temperature=0.0)),
        )
    ).token_ids
    assert plain == speculative
    assert plain != unpenalised


def test_unknown_verification_is_a_config_error() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown verification"):
        DraftSettings(verification="maybe")  # type: ignore[arg-type]
    assert np.isfinite(DraftSettings().n_max)


class _CountingCutoff(ConfidenceCutoff):
    refusals = 0

    def admits(self, confidence: float) -> bool:
        admitted = super().admits(confidence)
        _CountingCutoff.refusals += not admitted
        return admitted


def test_confidence_cutoff_keeps_sampling_exact(
    weak_engine: SpeculativeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The adaptive mode's early stop depends on the tokens drafted so far and on the
    # confidence of the next one before it is drawn; samples must stay exact. Here
    # it distrusts the draft's tokens of middling confidence.
    calibration = ConfidenceCalibration()
    for _ in range(200):
        calibration.record([0.99, 0.6], n_accepted=1)
        calibration.record([0.99, 0.75], n_accepted=1)
    monkeypatch.setattr(
        DraftLengthController,
        "cutoff",
        lambda self: _CountingCutoff(calibration, 1.0, 0.3),
    )
    kinds: Counter[Provenance] = Counter()
    cut = sample_sequences(
        weak_engine,
        DraftSettings(n_max=6, adaptive=False),
        sampling_at(1.0),
        range(40_000, 40_000 + N_SAMPLES),
        kinds=kinds,
    )
    assert kinds[Provenance.DRAFT_ACCEPTED] > 100
    assert kinds[Provenance.TARGET_CORRECTION] > 100
    assert _CountingCutoff.refusals > 100, "the stop should cut many drafts"
    for position, p_value in enumerate(position_p_values(plain_samples(weak_engine, 1.0), cut)):
        assert p_value > 0.001, f"token {position} distribution differs (p={p_value:.2e})"
