"""The engine as a library (issue 14): lifecycle, cancel, threads, honest statistics.

What could kill the interpreter natively (calls after close(), close() from another
thread, aborting a decode) runs in a child process: a regression then shows as a
failed test with the child's exit code, not as a lost test run.
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    FinishedEvent,
    GenerationSettings,
    ModelConfig,
    Provenance,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
    StopReason,
    collect,
)
from core.engine.config import MAX_SEED
from core.engine.detokenize import StopStringHoldback, continuation_texts
from core.engine.events import EmittedToken
from core.errors import ConfigError, EngineError, PromptTooLongError
from tests.conftest import REPO_ROOT, TinyModels
from tests.support.devices import ON_GPU
from tests.support.engine_settings import GREEDY, greedy_settings
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

settings = greedy_settings


# -- child processes -------------------------------------------------------------------

CHILD_PRELUDE = """
import gc, json, sys, threading, time
from pathlib import Path
from core.engine import (
    ChatMessage, DraftSettings, FinishedEvent, GenerationSettings, ModelConfig,
    SamplingSettings, SpeculativeEngine, StepEvent, StopReason, collect,
)
from core.errors import EngineClosedError, EngineError

TARGET, DRAFT = Path(sys.argv[1]), Path(sys.argv[2])
GREEDY = SamplingSettings(temperature=0.0)

def make_engine(n_ctx=256):
    return SpeculativeEngine(
        ModelConfig(TARGET, n_ctx=n_ctx, n_threads=2), ModelConfig(DRAFT, n_threads=2)
    )

def refusal(call):
    try:
        call()
    except EngineClosedError as error:
        return "EngineClosedError: " + str(error)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "no error"
"""


def run_child(body: str, *args: Path | str, timeout: float = 120) -> Any:
    """Run ``body`` after CHILD_PRELUDE in a fresh interpreter; returns the JSON it
    printed last. Fails with the exit code (139: segfault, 134: abort) and stderr."""
    code = CHILD_PRELUDE + textwrap.dedent(body)
    # The repository first, then whatever the caller's path adds (a llama_cpp built
    # elsewhere, as on the GPU machine).
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert child.returncode == 0, (
        f"child exited with {child.returncode}\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}"
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model big enough that a 2k-token prompt takes about a second on 2 cores."""
    return write_tiny_model(
        tmp_path_factory.mktemp("slow-model") / "slow.gguf",
        TinyModelSpec(n_embd=256, n_ff=1024, n_layer=8, context_length=4096),
    )


# -- close() ------------------------------------------------------------------------------


def test_every_call_after_close_raises_engine_closed_error(tiny_models: TinyModels) -> None:
    results = run_child(
        """
        engine = make_engine()
        prompt = engine.tokenize("the cat")
        engine.close()
        engine.close()  # a second close is harmless
        with make_engine() as scoped:
            scoped_prompt = scoped.tokenize("the cat")
        calls = {
            "generate": lambda: engine.generate(prompt),
            "tokenize": lambda: engine.tokenize("x"),
            "tokenize_chat": lambda: engine.tokenize_chat([ChatMessage("user", "hi")]),
            "detokenize": lambda: engine.detokenize(prompt),
            "cancel": engine.cancel,
            "target.token_bytes": lambda: engine.target.token_bytes(5),
            "target.reset": engine.target.reset,
            "draft.tokenize": lambda: engine.draft.tokenize("x"),
            "with: generate": lambda: list(scoped.generate(scoped_prompt)),
            "with: detokenize": lambda: scoped.detokenize(scoped_prompt),
        }
        results = {name: refusal(call) for name, call in calls.items()}
        results["closed"] = engine.closed
        # A sibling: an id outside the vocabulary used to end the process in C++.
        with make_engine() as open_engine:
            results["bad id"] = refusal(lambda: open_engine.detokenize([10**6]))
        print(json.dumps(results))
        """,
        tiny_models.target,
        tiny_models.draft,
    )
    assert results.pop("closed") is True
    assert re.fullmatch(
        r"EngineError: token id 1000000 is outside the vocabulary of tiny-target.gguf \(0\.\.\d+\)",
        results.pop("bad id"),
    )
    for name, outcome in results.items():
        assert outcome.startswith("EngineClosedError: "), name
        assert "closed" in outcome, name


def test_close_from_another_thread_while_streaming_ends_the_answer_cleanly(
    tiny_models: TinyModels,
) -> None:
    # Rounds close at different moments: before the first event, during prompt
    # processing, mid-step and between steps; helper threads tokenize meanwhile.
    results = run_child(
        """
        outcomes = []
        for round in range(12):
            engine = make_engine(n_ctx=512)
            prompt = engine.tokenize("the cat and the dog " * (1 + round * 5))[:300]
            stream = engine.generate(
                prompt, GenerationSettings(n_predict=-1, sampling=GREEDY,
                                           drafting=DraftSettings(n_max=4))
            )
            events, errors, stop = [], [], threading.Event()

            def consume():
                try:
                    events.extend(stream)
                except Exception as error:
                    errors.append(repr(error))

            def hammer():
                while not stop.is_set():
                    try:
                        engine.detokenize(prompt)
                        engine.tokenize_chat([ChatMessage("user", "the cat")])
                    except EngineClosedError:
                        return
                    except Exception as error:
                        errors.append(repr(error))
                        return

            threads = [threading.Thread(target=consume), threading.Thread(target=hammer)]
            for thread in threads:
                thread.start()
            time.sleep(0.002 * round)
            engine.close()
            stop.set()
            for thread in threads:
                thread.join(30)
            finished = events[-1] if events else None
            outcomes.append({
                "errors": errors,
                "finished_last": isinstance(finished, FinishedEvent),
                "only_steps_before": all(isinstance(e, StepEvent) for e in events[:-1]),
                "stop_reason": getattr(finished, "stop_reason", None),
                "after": refusal(lambda: engine.generate(prompt)),
            })
        print(json.dumps(outcomes))
        """,
        tiny_models.target,
        tiny_models.draft,
    )
    for outcome in results:
        assert outcome["errors"] == []
        assert outcome["finished_last"] and outcome["only_steps_before"]
        assert outcome["stop_reason"] in ("cancelled", "context_full")
        assert outcome["after"].startswith("EngineClosedError: ")
    assert any(outcome["stop_reason"] == "cancelled" for outcome in results)


def test_close_during_prompt_processing_returns_quickly(
    tiny_models: TinyModels, slow_model: Path
) -> None:
    results = run_child(
        """
        engine = SpeculativeEngine(ModelConfig(TARGET, n_ctx=2048, n_batch=2048, n_threads=2))
        prompt = engine.tokenize("the cat and the dog " * 600)[:2000]
        stream = engine.generate(prompt, GenerationSettings(
            n_predict=4, sampling=GREEDY, drafting=DraftSettings(source="none")))
        events = []
        consumer = threading.Thread(target=lambda: events.extend(stream))
        consumer.start()
        time.sleep(0.15)
        started = time.perf_counter()
        engine.close()
        close_s = time.perf_counter() - started
        consumer.join(30)
        print(json.dumps({"close_s": close_s, "stop": events[-1].stop_reason,
                          "n_events": len(events)}))
        """,
        slow_model,
        slow_model,
    )
    assert results["stop"] == "cancelled" and results["n_events"] == 1
    assert results["close_s"] < 1.0


# -- finalizer --------------------------------------------------------------------------


def test_engines_dropped_without_close_free_their_memory(slow_model: Path) -> None:
    results = run_child(
        """
        def rss():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024

        def use_engine():
            engine = SpeculativeEngine(ModelConfig(TARGET, n_ctx=4096, n_threads=2),
                                       ModelConfig(DRAFT, n_threads=2))
            prompt = engine.tokenize("the cat")
            # An answer left unfinished must not keep the engine alive either.
            stream = engine.generate(prompt, GenerationSettings(n_predict=50))
            next(stream)
            return rss()

        # The first engines warm up libraries and the allocator's pools, which keep
        # some freed memory for reuse.
        use_engine()
        use_engine()
        gc.collect()
        base = rss()
        loaded = use_engine()
        for _ in range(3):
            use_engine()
        gc.collect()
        print(json.dumps({"one_engine": loaded - base, "after_four": rss() - base}))
        """,
        slow_model,
        slow_model,
    )
    # Weights, KV caches and buffers of the pair; on a GPU only the host-side buffers
    # (21.8 MB measured on an H100), the rest is in VRAM.
    assert results["one_engine"] > (10e6 if ON_GPU else 40e6)
    # Four more engines were dropped without close(): memory did not grow with them
    # (without the finalizers it grew by about one engine's worth each).
    assert results["after_four"] < 0.5 * results["one_engine"]


# -- cancel -----------------------------------------------------------------------------


def test_cancel_during_a_long_prompt_returns_within_a_second(slow_model: Path) -> None:
    results = run_child(
        """
        # One 2000-token batch: only llama.cpp's abort callback can stop it early.
        engine = SpeculativeEngine(ModelConfig(TARGET, n_ctx=2048, n_batch=2048, n_threads=2))
        prompt = engine.tokenize("the cat and the dog " * 600)[:2000]
        events = []
        stream = engine.generate(prompt, GenerationSettings(
            n_predict=4, sampling=GREEDY, drafting=DraftSettings(source="none")))
        consumer = threading.Thread(target=lambda: events.extend(stream))
        consumer.start()
        time.sleep(0.15)
        started = time.perf_counter()
        engine.cancel()
        consumer.join(30)
        latency = time.perf_counter() - started
        cached_after_cancel = len(engine.target.cached_tokens)
        # The engine goes on: the same prompt now runs to the end.
        full = collect(engine.generate(prompt, GenerationSettings(
            n_predict=4, sampling=GREEDY, drafting=DraftSettings(source="none"))))
        print(json.dumps({
            "latency": latency, "stop": events[-1].stop_reason, "n_events": len(events),
            "n_predict": events[-1].stats.n_predict, "cached": cached_after_cancel,
            "prompt": len(prompt), "full_stop": full.stop_reason, "full_tokens": len(full.tokens),
            "full_prompt_ms": full.stats.prompt_ms,
        }))
        """,
        slow_model,
        slow_model,
    )
    assert results["stop"] == "cancelled" and results["n_events"] == 1
    assert results["n_predict"] == 0
    assert results["latency"] < 1.0
    # The batch was stopped part-way (not finished and then cancelled). llama.cpp
    # polls the abort callback between CPU graph nodes only; a GPU runs the whole
    # batch, and this one takes it milliseconds.
    if not ON_GPU:
        assert results["cached"] < results["prompt"] - 1
    assert results["full_stop"] == "n_predict" and results["full_tokens"] == 4


def test_cancel_before_the_first_event_counts(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("the cat and the dog")
    stream = tiny_engine.generate(prompt, settings(50, n_max=4))
    tiny_engine.cancel()
    events = list(stream)
    assert len(events) == 1 and isinstance(events[0], FinishedEvent)
    assert events[0].stop_reason is StopReason.CANCELLED
    assert events[0].stats.n_predict == 0
    # A cancel with no answer running does not leak into the next one.
    tiny_engine.cancel()
    assert len(collect(tiny_engine.generate(prompt, settings(10, n_max=4))).tokens) == 10


def test_generate_checks_everything_at_the_call(tiny_models: TinyModels) -> None:
    with SpeculativeEngine(ModelConfig(tiny_models.target, n_ctx=64, n_threads=2)) as engine:
        n_ctx = engine.target.n_ctx
        with pytest.raises(PromptTooLongError, match=f"context holds {n_ctx}"):
            engine.generate(engine.tokenize("the cat " * n_ctx))
        with pytest.raises(PromptTooLongError, match="empty"):
            engine.generate([])
        with pytest.raises(ConfigError, match="needs a draft model"):
            engine.generate(engine.tokenize("the cat"), settings(5, n_max=4))
        with pytest.raises(ConfigError, match="token ids"):
            engine.generate("the cat")  # type: ignore[arg-type]
        with pytest.raises(EngineError, match="outside the vocabulary"):
            engine.generate([1, 99999])


def test_one_answer_at_a_time_and_the_engine_is_free_once_it_ends(
    tiny_engine: SpeculativeEngine,
) -> None:
    prompt = tiny_engine.tokenize("the cat")
    first = tiny_engine.generate(prompt, settings(5, n_max=4))
    with pytest.raises(ConfigError, match="already generating"):
        tiny_engine.generate(prompt, settings(5))
    # Reading up to the FinishedEvent frees the engine, without draining the stream.
    for event in first:
        if isinstance(event, FinishedEvent):
            break
    second = tiny_engine.generate(prompt, settings(5, n_max=4))
    second.close()  # abandoning a stream frees the engine
    third = tiny_engine.generate(prompt, settings(5, n_max=4))
    next(third)
    del third  # so does dropping it unfinished
    gc.collect()
    assert len(collect(tiny_engine.generate(prompt, settings(5, n_max=4))).tokens) == 5


# -- threads ----------------------------------------------------------------------------


def test_calls_from_other_threads_leave_the_stream_unchanged(
    tiny_engine: SpeculativeEngine,
) -> None:
    prompt = tiny_engine.tokenize("naïve café 😀 the cat and the dog")
    answer_settings = settings(150, n_max=4)
    reference = collect(tiny_engine.generate(prompt, answer_settings))
    other_ids = tiny_engine.tokenize("😀 ünïcödé and the people made " * 8)
    other_text = tiny_engine.detokenize(other_ids)
    messages = [ChatMessage("system", "be brief"), ChatMessage("user", "the cat")]
    other_chat = tiny_engine.tokenize_chat(messages)
    stop = threading.Event()
    wrong: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            if tiny_engine.detokenize(other_ids) != other_text:
                wrong.append("detokenize")
            if tiny_engine.tokenize_chat(messages) != other_chat:
                wrong.append("tokenize_chat")
            # Let the generating thread run: a thread that never sleeps makes every
            # ctypes call of the answer wait for the GIL (slow, not wrong).
            time.sleep(0.005)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2):
            result = collect(tiny_engine.generate(prompt, answer_settings))
            assert result.tokens == reference.tokens
            assert result.rejected == reference.rejected
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert wrong == []


# -- statistics -------------------------------------------------------------------------


def assert_stats_match_what_was_emitted(engine: SpeculativeEngine, events: list[Any]) -> None:
    steps = [event for event in events if isinstance(event, StepEvent)]
    finished = events[-1]
    assert isinstance(finished, FinishedEvent)
    tokens = [token for step in steps for token in step.tokens]
    stats = finished.stats
    assert stats.n_predict == len(tokens)
    assert stats.n_accept == sum(t.provenance is Provenance.DRAFT_ACCEPTED for t in tokens)
    assert engine.detokenize([t.id for t in tokens]) == "".join(t.text for t in tokens)


@pytest.fixture(scope="module")
def eos_prone_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpeculativeEngine]:
    """The tiny pair with end-of-generation set to a token both often produce, so
    the draft proposes EOS and the target accepts it."""
    folder = tmp_path_factory.mktemp("eos-prone")
    eos = 319  # " more": the token the tiny draft most often gets accepted
    target = write_tiny_model(folder / "target.gguf", TinyModelSpec(seed=0, eos_id=eos))
    draft = write_tiny_model(
        folder / "draft.gguf", TinyModelSpec(seed=1, eos_id=eos), perturb_from=0, perturb_scale=0.15
    )
    engine = SpeculativeEngine(
        ModelConfig(target, n_ctx=512, n_threads=2), ModelConfig(draft, n_threads=2)
    )
    yield engine
    engine.close()


def test_an_accepted_end_of_generation_draft_is_not_counted(
    eos_prone_engine: SpeculativeEngine,
) -> None:
    engine = eos_prone_engine
    seen_accepted_eos = False
    for text in ("one two one two", "the cat and the dog", "naïve café 😀 the cat"):
        events = list(engine.generate(engine.tokenize(text), settings(80, n_max=6)))
        assert_stats_match_what_was_emitted(engine, events)
        last_step = [e for e in events if isinstance(e, StepEvent)][-1]
        if (
            events[-1].stop_reason is StopReason.END_OF_GENERATION
            and last_step.n_accepted + len(last_step.rejected) < last_step.n_drafted
        ):
            seen_accepted_eos = True  # drafted, accepted, and neither shown nor rejected
    assert seen_accepted_eos


def test_statistics_and_ids_match_the_text_at_stop_strings(
    tiny_engine: SpeculativeEngine,
) -> None:
    prompt = tiny_engine.tokenize("the cat and the dog")
    full = collect(tiny_engine.generate(prompt, settings(60, n_max=4))).text
    for start in range(3, 45, 4):
        stop = full[start : start + 3]
        for drafting in ({"n_max": 4}, {"source": DraftSource.NONE}):
            stopped = GenerationSettings(
                n_predict=60,
                sampling=GREEDY,
                drafting=DraftSettings(**drafting),  # type: ignore[arg-type]
                stop_strings=(stop,),
            )
            events = list(tiny_engine.generate(prompt, stopped))
            assert events[-1].stop_reason is StopReason.STOP_STRING
            assert_stats_match_what_was_emitted(tiny_engine, events)
            text = "".join(t.text for e in events if isinstance(e, StepEvent) for t in e.tokens)
            # Never past the stop string; at most the cut token's part is missing.
            assert full[: full.index(stop)].startswith(text)


def test_statistics_match_in_every_way_an_answer_ends(tiny_models: TinyModels) -> None:
    with SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=64, n_threads=2),
        ModelConfig(tiny_models.draft, n_threads=2),
    ) as engine:
        prompt = engine.tokenize("the cat and the dog")
        # Ends: the token budget mid-draft, end of generation or budget, a full context.
        for answer in (settings(7, n_max=8), settings(60, n_max=4), settings(-1, source="ngram")):
            assert_stats_match_what_was_emitted(engine, list(engine.generate(prompt, answer)))
        stream = engine.generate(prompt, settings(-1, n_max=4))
        events = [next(stream)]
        engine.cancel()
        events += list(stream)
        assert events[-1].stop_reason is StopReason.CANCELLED
        assert_stats_match_what_was_emitted(engine, events)


def test_holdback_keeps_text_less_tokens_with_the_token_completing_them() -> None:
    holdback = StopStringHoldback(("STOP",))
    first_half = EmittedToken(1, "", Provenance.TARGET_ONLY)
    shown, _ = holdback.feed([EmittedToken(0, "a", Provenance.TARGET_ONLY), first_half])
    assert [t.id for t in shown] == [0]
    shown, _ = holdback.feed([EmittedToken(2, "é", Provenance.TARGET_ONLY)])
    assert [t.id for t in shown] == [1, 2]


# -- input checks -----------------------------------------------------------------------


def test_a_plain_string_as_stop_strings_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"not one string; write stop_strings=\('END',\)"):
        GenerationSettings(stop_strings="END")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be a str"):
        GenerationSettings(stop_strings=(b"END",))  # type: ignore[arg-type]
    assert GenerationSettings(stop_strings=["a", "b"]).stop_strings == ("a", "b")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["temperature", "top_p", "min_p", "typical_p", "repeat_penalty"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_sampling_numbers_are_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=name.replace("_", "-")):
        SamplingSettings(**{name: value})


@pytest.mark.parametrize("seed", [2**32, MAX_SEED + 1, -2, 2**64])
def test_seeds_llama_cpp_cannot_honour_are_refused(seed: int) -> None:
    with pytest.raises(ConfigError, match="seed must be between 0 and 4294967294"):
        SamplingSettings(seed=seed)


def test_the_reported_seed_reproduces_the_answer(tiny_engine: SpeculativeEngine) -> None:
    prompt = tiny_engine.tokenize("the cat")
    # Sample-and-match consumes the random stream once per emitted token whatever the
    # draft lengths, so the seed alone fixes the answer (README: verification modes).
    match = DraftSettings(verification="match", adaptive=False)
    sampling = SamplingSettings(temperature=1.0, seed=-1)
    drawn = collect(
        tiny_engine.generate(
            prompt, GenerationSettings(n_predict=20, sampling=sampling, drafting=match)
        )
    )
    assert 0 <= drawn.stats.seed <= MAX_SEED
    again = collect(
        tiny_engine.generate(
            prompt,
            GenerationSettings(
                n_predict=20, sampling=SamplingSettings(1.0, seed=drawn.stats.seed), drafting=match
            ),
        )
    )
    assert again.token_ids == drawn.token_ids and again.stats.seed == drawn.stats.seed
    highest = GenerationSettings(n_predict=5, sampling=SamplingSettings(1.0, seed=MAX_SEED))
    assert collect(tiny_engine.generate(prompt, highest)).stats.seed == MAX_SEED


# -- rejected drafts --------------------------------------------------------------------


def test_rejected_draft_text_is_decoded_after_the_accepted_text() -> None:
    emoji = "😀".encode()
    assert continuation_texts(emoji[:2], [emoji[2:3], emoji[3:], b"!"]) == ["", "😀", "!"]
    # Alone, the same pieces would be replacement characters.
    assert continuation_texts(b"ok ", [emoji[2:3]]) == ["\ufffd"]
    # An unfinished character at the end is not shown.
    assert continuation_texts(b"", [emoji[:3]]) == [""]


def test_rejected_drafts_in_events_are_decoded_in_context(tiny_engine: SpeculativeEngine) -> None:
    # The tiny vocabulary spells accented letters and emoji with byte tokens.
    prompt = tiny_engine.tokenize("😀 é 😀 é 😀 é 😀")
    for drafting in ({"n_max": 6}, {"source": DraftSource.NGRAM, "n_max": 6}):
        events = list(tiny_engine.generate(prompt, settings(120, **drafting)))
        shown: list[int] = []
        for event in events:
            if not isinstance(event, StepEvent):
                continue
            if event.rejected:
                accepted = [t.id for t in event.tokens[: event.n_accepted]]
                context = b"".join(tiny_engine.target.token_bytes(t) for t in shown + accepted)
                pieces = [tiny_engine.target.token_bytes(t.id) for t in event.rejected]
                assert [t.text for t in event.rejected] == continuation_texts(context, pieces)
            shown += [t.id for t in event.tokens]


@pytest.mark.demo_pair
def test_stop_strings_keep_exact_text_and_ids_with_a_real_vocabulary(
    demo_engine: SpeculativeEngine,
) -> None:
    # SmolLM2's byte-level BPE re-tokenizes the shown part of a cut token exactly,
    # so the text ends right before the stop string, also inside split emoji.
    for question in ("Write three short sentences about cats.", "Reply with five 🐱 emoji."):
        prompt = demo_engine.tokenize_chat([ChatMessage("user", question)])
        full = collect(demo_engine.generate(prompt, settings(24, n_max=8))).text
        for start in range(4, len(full) - 3, max(1, (len(full) - 7) // 3)):
            stop = full[start : start + 3]
            stopped = GenerationSettings(
                n_predict=24,
                sampling=GREEDY,
                drafting=DraftSettings(n_max=8),
                stop_strings=(stop,),
            )
            events = list(demo_engine.generate(prompt, stopped))
            assert_stats_match_what_was_emitted(demo_engine, events)
            text = "".join(t.text for e in events if isinstance(e, StepEvent) for t in e.tokens)
            assert text == full[: full.index(stop)]
