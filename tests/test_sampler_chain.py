"""The numpy sampler chain must give the distribution llama.cpp's chain samples from."""

from __future__ import annotations

import ctypes

import llama_cpp
import numpy as np
import pytest

from core.engine.config import SamplingSettings
from core.engine.distribution import Distribution, PenaltyWindow, SamplerChain, top_probability
from core.engine.sampling import TargetSampler


class _VocabOnly:
    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab


def native_distribution(
    settings: SamplingSettings, logits: np.ndarray, window: list[int]
) -> dict[int, float]:
    """Run the engine's native chain minus its final ``dist`` sampler on ``logits`` and
    return the softmax over the candidates it leaves."""
    sampler = TargetSampler(_VocabOnly(logits.size), settings)  # type: ignore[arg-type]
    chain = sampler._chain
    assert chain is not None
    data = np.zeros(logits.size, dtype=[("id", np.int32), ("logit", np.float32), ("p", np.float32)])
    data["id"] = np.arange(logits.size)
    data["logit"] = logits
    array = llama_cpp.llama_token_data_array(
        data.ctypes.data_as(llama_cpp.llama_token_data_p), logits.size, -1, False
    )
    for token in window:
        llama_cpp.llama_sampler_accept(chain, token)
    for index in range(llama_cpp.llama_sampler_chain_n(chain) - 1):
        llama_cpp.llama_sampler_apply(
            llama_cpp.llama_sampler_chain_get(chain, index), ctypes.byref(array)
        )
    kept = data[: array.size]
    probs = np.exp(kept["logit"].astype(np.float64) - kept["logit"].max())
    sampler.close()
    return dict(zip(kept["id"].tolist(), (probs / probs.sum()).tolist(), strict=True))


def numpy_distribution(
    settings: SamplingSettings, logits: np.ndarray, window: list[int]
) -> dict[int, float]:
    penalties = PenaltyWindow(settings.repeat_last_n)
    penalties.extend(window)
    result = SamplerChain(settings, logits.size).distribution(logits, penalties.ids_with())
    return dict(zip(result.ids.tolist(), result.probs.tolist(), strict=True))


def random_settings(rng: np.random.Generator, trial: int) -> SamplingSettings:
    return SamplingSettings(
        temperature=float(rng.choice([0.5, 0.8, 1.0, 1.5])),
        top_k=int(rng.choice([0, 5, 40])),
        top_p=float(rng.choice([1.0, 0.9, 0.5])),
        min_p=float(rng.choice([0.0, 0.05, 0.2])),
        typical_p=float(rng.choice([1.0, 1.0, 0.8])),
        repeat_penalty=float(rng.choice([1.0, 1.3, 0.8])),
        repeat_last_n=int(rng.choice([0, 8, 64])),
        # Every other trial shuffles --sampling-seq: order changes the result.
        sequence="".join(rng.permutation(list("kypmt"))) if trial % 2 else "kypmt",
    )


def test_numpy_chain_equals_llama_cpp_chain_on_random_logits() -> None:
    rng = np.random.default_rng(7)
    for trial in range(150):
        n_vocab = int(rng.choice([50, 400, 5000]))
        logits = (rng.standard_normal(n_vocab) * rng.uniform(0.5, 4.0)).astype(np.float32)
        settings = random_settings(rng, trial)
        window = rng.integers(0, n_vocab, 100).tolist()
        native = native_distribution(settings, logits, window)
        ours = numpy_distribution(settings, logits, window)
        assert native.keys() == ours.keys(), f"trial {trial}: {settings} keeps other tokens"
        worst = max(abs(native[token] - ours[token]) for token in native)
        assert worst < 1e-5, f"trial {trial}: {settings} differs by {worst}"


def test_top_k_on_a_large_vocabulary_finds_the_true_top_candidates() -> None:
    # The band search must widen when few logits are near the maximum.
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(151_936).astype(np.float32)
    logits[123] = 50.0  # one outlier far above the rest
    settings = SamplingSettings(temperature=1.0, top_k=40, top_p=1.0, min_p=0.0)
    chain = SamplerChain(settings, logits.size)
    for _ in range(3):
        result = chain.distribution(logits, np.empty(0, dtype=np.int64))
        expected = np.sort(np.argpartition(logits, -40)[-40:])
        assert np.array_equal(np.sort(result.ids), expected)


def test_penalised_tokens_below_the_top_k_stay_out_and_above_it_drop_out() -> None:
    logits = np.array([5.0, 4.0, 3.0, 2.0, 1.0, -1.0], dtype=np.float32)
    settings = SamplingSettings(
        temperature=1.0, top_k=2, top_p=1.0, min_p=0.0, repeat_penalty=4.0, repeat_last_n=8
    )
    chain = SamplerChain(settings, logits.size)
    # Token 0 (5.0) is penalised to 1.25: the top two become tokens 1 and 2.
    result = chain.distribution(logits, np.array([0, 5]))
    assert sorted(result.ids.tolist()) == [1, 2]


def test_distribution_helpers() -> None:
    dist = Distribution(np.array([7, 3, 9]), np.array([0.5, 0.3, 0.2]))
    assert dist.prob(3) == pytest.approx(0.3)
    assert dist.prob(4) == 0.0
    assert dist.probs_of(np.array([9, 1, 7])).tolist() == pytest.approx([0.2, 0.0, 0.5])
    rng = np.random.default_rng(0)
    draws = [dist.sample(rng) for _ in range(4000)]
    assert draws.count(7) / 4000 == pytest.approx(0.5, abs=0.03)
    assert top_probability(np.array([2.0, 0.0, 0.0], dtype=np.float32)) == pytest.approx(
        np.exp(2) / (np.exp(2) + 2)
    )
    window = PenaltyWindow(3)
    window.extend([1, 2, 3, 4])
    assert window.ids_with([9]).tolist() == [3, 4, 9]
    assert PenaltyWindow(0).ids_with([1]).size == 0
