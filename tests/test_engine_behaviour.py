"""Engine behaviour beyond exactness: stops, cancel, context limits, events, errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    FinishedEvent,
    GenerationSettings,
    ModelConfig,
    Provenance,
    SpeculativeEngine,
    StepEvent,
    StopReason,
    collect,
    event_from_dict,
    event_to_dict,
)
from core.errors import ConfigError, PromptTooLongError
from tests.conftest import TinyModels
from tests.support.engine_settings import GREEDY, greedy_settings

settings = greedy_settings


def test_events_follow_the_provenance_rules(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("the cat and the dog")
    events = list(tiny_engine.generate(prompt, settings(80, n_max=4)))
    steps = [e for e in events if isinstance(e, StepEvent)]
    finished = events[-1]
    assert isinstance(finished, FinishedEvent)
    assert all(isinstance(e, StepEvent) for e in events[:-1])
    for step in steps:
        kinds = [t.provenance for t in step.tokens]
        if step.n_drafted == 0:
            assert kinds == [Provenance.TARGET_ONLY]
            continue
        # k accepted drafts, then the target's own token (unless the budget ran out).
        assert kinds[: step.n_accepted] == [Provenance.DRAFT_ACCEPTED] * step.n_accepted
        tail = kinds[step.n_accepted :]
        expected = (
            Provenance.TARGET_BONUS
            if step.n_accepted == step.n_drafted
            else Provenance.TARGET_CORRECTION
        )
        assert tail in ([expected], [])
        assert len(step.rejected) == step.n_drafted - step.n_accepted
    stats = finished.stats
    assert stats.n_drafted == sum(s.n_drafted for s in steps)
    assert stats.n_accept == sum(s.n_accepted for s in steps)
    assert stats.n_predict == sum(len(s.tokens) for s in steps) == 80
    assert stats.ttft_ms > 0 and stats.prompt_ms > 0 and stats.decode_ms > 0
    assert sum(stats.accepted_length_histogram) == sum(1 for s in steps if s.n_drafted)


def test_events_survive_a_json_round_trip(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("one two one two")
    events = list(tiny_engine.generate(prompt, settings(30, n_max=3)))
    wire = json.dumps([event_to_dict(e) for e in events])
    assert [event_from_dict(d) for d in json.loads(wire)] == events


def test_streamed_text_equals_decoding_all_tokens_at_once(tiny_engine: SpeculativeEngine) -> None:
    # The tiny model emits raw byte tokens, so characters often span tokens.
    prompt = tiny_engine.tokenize("naïve café 😀 the cat")
    result = collect(tiny_engine.generate(prompt, settings(120, n_max=4)))
    assert result.text == tiny_engine.detokenize(result.token_ids)


def test_n_predict_is_exact_even_mid_draft(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("the cat")
    for n in (1, 2, 7, 13):
        result = collect(tiny_engine.generate(prompt, settings(n, n_max=8)))
        assert len(result.tokens) == n
        assert result.stop_reason is StopReason.MAX_TOKENS


def test_stop_string_ends_the_answer_before_it(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("the cat and the dog")
    full = collect(tiny_engine.generate(prompt, settings(60, n_max=4))).text
    stop = full[20:24]
    expected = full[: full.index(stop)]
    for drafting in ({"n_max": 4}, {"source": DraftSource.NONE}):
        stopped = collect(
            tiny_engine.generate(
                prompt,
                GenerationSettings(
                    n_predict=60,
                    sampling=GREEDY,
                    drafting=DraftSettings(**drafting),  # type: ignore[arg-type]
                    stop_strings=(stop,),
                ),
            )
        )
        assert stopped.stop_reason is StopReason.STOP_STRING
        assert stopped.text == expected


def test_cancel_stops_within_one_step_and_engine_stays_usable(
    tiny_engine: SpeculativeEngine,
) -> None:
    prompt = tiny_engine.tokenize("the cat and the dog")
    reference = collect(tiny_engine.generate(prompt, settings(50, n_max=4))).token_ids
    events = tiny_engine.generate(prompt, settings(500, n_max=4))
    first = next(events)
    assert isinstance(first, StepEvent)
    cancelled_from = threading.Thread(target=tiny_engine.cancel)
    cancelled_from.start()
    cancelled_from.join()
    rest = list(events)
    assert len(rest) == 1
    assert isinstance(rest[0], FinishedEvent)
    assert rest[0].stop_reason is StopReason.CANCELLED
    # A fresh answer after the cancel is complete and identical to before.
    assert collect(tiny_engine.generate(prompt, settings(50, n_max=4))).token_ids == reference


def test_prompt_longer_than_context_is_refused_and_engine_stays_usable(
    tiny_models: TinyModels,
) -> None:
    with SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=64), ModelConfig(tiny_models.draft)
    ) as engine:
        n_ctx = engine.target.n_ctx  # llama.cpp rounds the context up to its padding
        long_prompt = engine.tokenize("the cat " * n_ctx)
        with pytest.raises(PromptTooLongError, match=f"context holds {n_ctx}"):
            list(engine.generate(long_prompt, settings()))
        short = engine.tokenize("the cat")
        assert len(collect(engine.generate(short, settings(10))).tokens) == 10


def test_context_full_mid_answer_stops_with_that_reason(tiny_models: TinyModels) -> None:
    with SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=64), ModelConfig(tiny_models.draft)
    ) as engine:
        n_ctx = engine.target.n_ctx
        prompt = engine.tokenize("the cat and the dog " * 40)[: n_ctx - 30]
        for drafting in ({"n_max": 8}, {"source": DraftSource.NONE}, {"source": DraftSource.NGRAM}):
            result = collect(
                engine.generate(prompt, settings(500, **drafting))  # type: ignore[arg-type]
            )
            assert result.stop_reason is StopReason.CONTEXT_FULL
            assert "context is full" in result.detail
            assert len(prompt) + len(result.tokens) == n_ctx + 1  # the last one needs no slot


def test_batches_never_exceed_n_batch(tiny_models: TinyModels) -> None:
    # n_batch 4 with draft-max 8 and a 40-token prompt: an oversized batch would
    # abort the process, so reaching the end is the assertion, plus exactness.
    with SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=256, n_batch=4),
        ModelConfig(tiny_models.draft, n_batch=4),
    ) as engine:
        prompt = engine.tokenize("the cat and the dog " * 8)
        assert len(prompt) > 4
        plain = collect(engine.generate(prompt, settings(40, source=DraftSource.NONE)))
        speculative = collect(engine.generate(prompt, settings(40, n_max=8)))
        assert speculative.token_ids == plain.token_ids
        assert max(speculative.stats.accepted_length_histogram[4:], default=0) == 0


def test_prompt_cache_is_reused_across_turns(tiny_engine: SpeculativeEngine) -> None:
    first_turn = tiny_engine.tokenize("the cat and the dog")
    answer = collect(tiny_engine.generate(first_turn, settings(20, n_max=4)))
    second_turn = first_turn + answer.token_ids + tiny_engine.tokenize("people made")[1:]
    result = collect(tiny_engine.generate(second_turn, settings(10, n_max=4)))
    assert result.stats.n_prompt_reused >= len(first_turn) - 1


def test_model_draft_mode_without_a_draft_model_is_a_config_error(
    tiny_models: TinyModels,
) -> None:
    with SpeculativeEngine(ModelConfig(tiny_models.target, n_ctx=128)) as engine:
        prompt = engine.tokenize("the cat")
        with pytest.raises(ConfigError, match="needs a draft model"):
            list(engine.generate(prompt, settings(5, n_max=4)))
        assert len(collect(engine.generate(prompt, settings(5, source="ngram"))).tokens) == 5


def test_chat_template_renders_multi_turn_conversations(tiny_engine: SpeculativeEngine) -> None:
    messages = [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "the cat"),
        ChatMessage("assistant", "the dog"),
        ChatMessage("user", "and"),
    ]
    tokens = tiny_engine.tokenize_chat(messages)
    text = b"".join(tiny_engine.target.token_bytes(t, special=True) for t in tokens).decode()
    assert text.startswith("<s>")
    assert "<|system|>" in text and text.endswith("<|assistant|>")
    assert text.count("<|user|>") == 2


@pytest.mark.demo_pair
def test_demo_chat_answer_ends_at_end_of_generation(demo_engine: SpeculativeEngine) -> None:
    prompt = demo_engine.tokenize_chat(
        [
            ChatMessage("system", "You answer with one short sentence."),
            ChatMessage("user", "What colour is the sky on a clear day?"),
        ]
    )
    rendered = demo_engine.detokenize(prompt)
    assert "<|im_start|>system" in demo_engine.target.metadata.chat_template  # type: ignore[operator]
    assert len(rendered) > 0
    result = collect(demo_engine.generate(prompt, settings(200, n_max=8)))
    assert result.stop_reason is StopReason.END_OF_GENERATION
    assert "blue" in result.text.lower()
    assert "<|im_end|>" not in result.text


def test_weight_repack_is_off_by_default(tmp_path: Path) -> None:
    assert ModelConfig(tmp_path / "x.gguf").weight_repack is False
