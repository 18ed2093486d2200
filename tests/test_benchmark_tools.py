"""The GPU-efficiency measuring tools (tests/benchmarks/) work on small models here."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from core.engine import (
    DraftSettings,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine.model import LoadedModel
from core.errors import ConfigError
from core.gguf_meta import read_gguf_metadata
from core.tune.cost_curve import measure_decode_ms
from tests.benchmarks.decode_replay import recording, replay_seconds
from tests.benchmarks.greedy_divergence import explain
from tests.benchmarks.random_llama_gguf import SHAPES, write_random_llama
from tests.benchmarks.verify_cost_curve import markdown_row


def test_random_llama_loads_with_the_shape_it_was_given(tmp_path: Path) -> None:
    shape = SHAPES["tiny"]
    path = write_random_llama(tmp_path / "random.gguf", shape)
    metadata = read_gguf_metadata(path)
    assert metadata.architecture == "llama"
    model = LoadedModel(ModelConfig(path, n_ctx=64, n_threads=1))
    try:
        assert model.n_vocab == shape.n_vocab
        model.append([300, 301, 302], all_logits=True)
        logits = model.logits(-1)
        assert logits.shape == (shape.n_vocab,)
        assert bool((logits == logits).all()), "random weights must give finite logits"
    finally:
        model.close()


def test_cost_curve_measures_every_batch_size_and_empties_the_cache(tmp_path: Path) -> None:
    path = write_random_llama(tmp_path / "random.gguf", SHAPES["tiny"])
    model = LoadedModel(ModelConfig(path, n_ctx=64, n_threads=1))
    try:
        curve = measure_decode_ms(model, max_k=4, repeats=2, context=8)
        assert sorted(curve) == [1, 2, 3, 4]
        assert all(ms > 0 for ms in curve.values())
        # The measuring prompt does not stay behind for the next answer to reuse.
        assert model.cached_tokens == []
        with pytest.raises(ConfigError, match="needs 260 tokens of context"):
            measure_decode_ms(model, max_k=4, repeats=1, context=256)
    finally:
        model.close()


def test_the_readme_row_gives_ratios_to_a_single_token() -> None:
    curve = {k: 10.0 * (1 + (k - 1) / 8) for k in range(1, 18)}
    row = markdown_row("demo", curve)
    assert row.startswith("| demo: V(k)/V(1) | 1.00 (10.00 ms) | 1.12 | 1.38 |")
    assert row.endswith("| 2.88 | 3.00 |")


def test_divergence_explanation_sees_the_same_logits_single_and_batched_on_cpu(
    tiny_engine: SpeculativeEngine,
) -> None:
    target = tiny_engine.target
    history = tiny_engine.tokenize("the cat and the")
    target.reset()
    target.prefill(history)
    ranked = np.argsort(target.logits(-1))
    target.reset()
    best, second, worst = int(ranked[-1]), int(ranked[-2]), int(ranked[0])

    single, batched, top_two = explain(target, history, best, second, batch=5)
    assert single > 0.0
    # On the CPU a token's logits do not depend on its batch's size.
    assert batched == pytest.approx(single, abs=1e-3)
    assert top_two
    assert not explain(target, history, best, worst, batch=5)[2]
    assert target.cached_tokens == []


def test_replay_decodes_exactly_what_the_answer_decoded(tiny_engine: SpeculativeEngine) -> None:
    """The overhead's baseline: the recorded calls, replayed, leave the target with
    the very logits the answer's last verification left."""
    settings = GenerationSettings(
        n_predict=24,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(n_max=4, adaptive=False),
    )
    models = [tiny_engine.target, tiny_engine.draft]
    assert models[1] is not None
    for model in models:
        model.reset()
    with recording() as recorded:
        result = collect(tiny_engine.generate(tiny_engine.tokenize("the cat"), settings))
    answered = tiny_engine.target.logits(0).copy()
    assert recorded.n_decodes >= result.stats.n_steps + 2  # prompt, draft, verification
    assert any(call[0] == "seq_rm" for call in recorded.calls)  # rejected drafts trimmed

    memories = [llama_cpp.llama_get_memory(model.context) for model in models]  # type: ignore[union-attr]
    for model in models:
        model.reset()
        model.append(tiny_engine.tokenize("something else entirely"))
    assert replay_seconds(recorded, memories) > 0.0
    np.testing.assert_array_equal(tiny_engine.target.logits(0), answered)
    for model in models:
        model.reset()  # the engine's mirror of the cache no longer matches it
