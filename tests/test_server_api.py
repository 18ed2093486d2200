"""The OpenAI-compatible server on a real localhost port, driven by the official
``openai`` client (and raw HTTP where a client would not send such a request).

Protocol tests serve the tiny generated pair (fast); the greedy comparison with the
command line serves the demo pair through ``specchat-cli serve``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from core.engine import DraftSettings, GenerationSettings, ModelConfig
from core.engine.config import DraftSource
from core.server.request_log import RequestLogEntry
from core.worker.generation_queue import Turn
from tests.conftest import TinyModels
from tests.support.server_thread import ServerThread

KEY = "sk-test-key"
CHAT = [{"role": "user", "content": "Tell me a story."}]
MAX_WAITING = 3


@pytest.fixture(scope="module")
def server(tiny_models: TinyModels) -> Iterator[ServerThread]:
    running = ServerThread(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=2),
        ModelConfig(tiny_models.draft, n_threads=2),
        GenerationSettings(n_predict=-1, drafting=DraftSettings(n_max=4, adaptive=False)),
        api_key=KEY,
        max_waiting=MAX_WAITING,
    )
    yield running
    running.close()


def client(server: ServerThread, key: str = KEY, timeout: float = 60) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=timeout)


def last_entry(server: ServerThread, endpoint: str, after: int = 0) -> RequestLogEntry:
    """The newest log entry for ``endpoint`` among those past the first ``after``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = server.entries()[after:]
        matching = [entry for entry in entries if entry.endpoint == endpoint]
        if matching:
            return matching[-1]
        time.sleep(0.05)
    raise AssertionError(f"no log entry for {endpoint}")


def check_timings(timings: dict[str, Any], completion_tokens: int, prompt_tokens: int) -> None:
    assert timings["predicted_n"] == completion_tokens
    assert timings["prompt_n"] + timings["cache_n"] == prompt_tokens
    assert timings["predicted_ms"] > 0 and timings["predicted_per_second"] > 0
    assert 0 < timings["draft_n_accepted"] <= timings["draft_n"]
    assert timings["draft_acceptance"] == pytest.approx(
        timings["draft_n_accepted"] / timings["draft_n"]
    )
    # Each verification step keeps at most draft-max (4) drafted tokens.
    assert 0 < timings["draft_mean_accepted_length"] <= 4


def test_models_and_health(server: ServerThread) -> None:
    models = client(server).models.list()
    assert [model.id for model in models.data] == ["tiny-target.gguf"]
    health = httpx.get(server.base_url.removesuffix("/v1") + "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_chat_non_streaming_and_streaming_agree(server: ServerThread) -> None:
    whole = client(server).chat.completions.create(
        model="any", messages=CHAT, max_tokens=24, temperature=0
    )
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 24
    assert whole.usage.prompt_tokens > 4
    assert whole.model_extra is not None
    check_timings(whole.model_extra["timings"], 24, whole.usage.prompt_tokens)

    chunks = list(
        client(server).chat.completions.create(
            model="any",
            messages=CHAT,
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy: the same answer either way
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["length"]
    assert finishing[0].model_extra is not None
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices and usage.completion_tokens == 24
    check_timings(finishing[0].model_extra["timings"], 24, usage.prompt_tokens)
    entry = last_entry(server, "POST /v1/chat/completions")
    assert entry.status == 200 and entry.tokens == 24 and entry.acceptance is not None


def test_completions_with_stop_and_per_request_draft_settings(server: ServerThread) -> None:
    plain = client(server).completions.create(
        model="any", prompt="Once upon a time", max_tokens=16, temperature=0
    )
    text = plain.choices[0].text
    assert text and plain.usage is not None and plain.usage.completion_tokens == 16
    no_draft = client(server).completions.create(
        model="any",
        prompt="Once upon a time",
        max_tokens=16,
        temperature=0,
        extra_body={"speculative.n_max": 0},
    )
    assert no_draft.choices[0].text == text
    assert no_draft.model_extra is not None and no_draft.model_extra["timings"]["draft_n"] == 0
    clamped = client(server).completions.create(
        model="any",
        prompt="Once upon a time",
        max_tokens=16,
        temperature=0,
        extra_body={"speculative": {"n_max": 10_000, "p_min": 7}},
    )
    assert clamped.choices[0].text == text
    stream = client(server).completions.create(
        model="any", prompt="Once upon a time", max_tokens=16, temperature=0, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in stream if chunk.choices) == text


def test_bad_key_is_401_in_openai_format(server: ServerThread) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(server, key="wrong").chat.completions.create(model="any", messages=CHAT)
    assert caught.value.status_code == 401
    body = caught.value.response.json()
    assert body["error"]["type"] == "authentication_error"
    assert "API key" in body["error"]["message"]
    missing = httpx.get(server.base_url + "/models")
    assert missing.status_code == 401


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"messages": CHAT, "temperature": 5}, "temperature"),
        ({"messages": CHAT, "max_tokens": 0}, "max_tokens"),
        ({"messages": CHAT, "n": 2}, "n"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": CHAT, "stop": 3}, "stop"),
        ({"messages": CHAT, "speculative.n_max": "many"}, "speculative.n_max"),
        # An answer without what was asked for would look like a success.
        ({"messages": CHAT, "logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"messages": CHAT, "top_logprobs": 2}, "top_logprobs"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    server: ServerThread, arguments: dict[str, Any], field: str
) -> None:
    arguments = dict(arguments)
    messages = arguments.pop("messages")
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).chat.completions.create(model="any", messages=messages, extra_body=arguments)
    error = caught.value.response.json()["error"]
    assert error["param"] == field and error["message"].startswith(field + ":")


def test_malformed_json_missing_fields_and_huge_bodies(server: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    url = server.base_url + "/chat/completions"
    broken = httpx.post(url, content=b'{"messages": [', headers=headers)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    missing = httpx.post(url, json={"model": "any"}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    huge = httpx.post(
        url, json={"messages": [{"role": "user", "content": "x" * (2 << 20)}]}, headers=headers
    )
    assert huge.status_code == 413
    too_long = httpx.post(
        server.base_url + "/completions",
        json={"prompt": "word " * 2000, "unknown_field": {"ignored": True}},
        headers=headers,
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "prompt"


def test_disconnect_mid_stream_cancels_and_the_next_request_is_served(
    server: ServerThread,
) -> None:
    logged = len(server.entries())
    stream = client(server).chat.completions.create(
        model="any", messages=CHAT, max_tokens=480, temperature=0, stream=True
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
            if received == 3:
                break
    stream.close()
    entry = last_entry(server, "POST /v1/chat/completions", after=logged)
    assert entry.status == 499 and entry.note == "client disconnected"
    assert entry.tokens < 480
    # The engine is free again: the answer was cancelled, not run to its end.
    assert server.call(_queue_idle(server), timeout=30)
    started = time.monotonic()
    answer = client(server).chat.completions.create(
        model="any", messages=CHAT, max_tokens=8, temperature=0
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 8
    assert time.monotonic() - started < 30


async def _queue_idle(server: ServerThread) -> bool:
    import asyncio

    for _ in range(300):
        if not server.queue.busy:
            return True
        await asyncio.sleep(0.05)
    return False


def test_twenty_concurrent_clients_complete_or_get_a_clean_503(server: ServerThread) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def one_client(index: int) -> None:
        try:
            answer = client(server, timeout=120).chat.completions.create(
                model="any",
                messages=[{"role": "user", "content": f"Question {index}"}],
                max_tokens=12,
                temperature=0,
            )
            outcome = "ok" if answer.usage and answer.usage.completion_tokens == 12 else "short"
        except openai.APIStatusError as exc:
            retry = exc.response.headers.get("retry-after")
            code = exc.response.json()["error"]["code"]
            outcome = f"{exc.status_code}:{code}:{retry}"
        except Exception as exc:  # a hang or a broken connection: the test fails below
            outcome = f"failed: {exc!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert time.monotonic() - started < 180
    assert len(outcomes) == 20
    assert set(outcomes) <= {"ok", "503:queue_full:2"}, outcomes
    assert outcomes.count("ok") >= 1 + MAX_WAITING
    assert "503:queue_full:2" in outcomes
    # Nothing is left waiting, and the server still answers.
    assert server.call(_queue_idle(server), timeout=30)
    assert client(server).models.list().data


def test_streams_of_errors_use_the_openai_error_shape(server: ServerThread) -> None:
    # The queue stays sane after errors: a refused request takes no turn.
    for _ in range(MAX_WAITING + 2):
        with pytest.raises(openai.BadRequestError):
            client(server).chat.completions.create(model="any", messages=CHAT, n=3)
    assert not server.queue.busy
    body = json.loads(
        httpx.post(
            server.base_url + "/chat/completions",
            json={"messages": CHAT, "n": 3},
            headers={"Authorization": f"Bearer {KEY}"},
        ).text
    )
    assert set(body["error"]) == {"message", "type", "param", "code"}
    unknown = httpx.get(server.base_url + "/engines")
    assert unknown.status_code == 404 and "/v1/engines" in unknown.json()["error"]["message"]


def test_half_a_surrogate_pair_is_a_400_and_the_engine_keeps_serving(
    server: ServerThread,
) -> None:
    # A client that cut an emoji in two sends JSON's escape of one half. The server
    # hung on it: the text never reached the engine, and nothing answered the call.
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    cases = [
        (
            "/chat/completions",
            b'{"messages":[{"role":"user","content":"hi \\udc80 x"}]}',
            "messages[0].content",
        ),
        ("/completions", b'{"prompt":"\\ud800 hi"}', "prompt"),
        (
            "/chat/completions",
            b'{"messages":[{"role":"user","content":"hi"}],"stop":"\\udc80"}',
            "stop",
        ),
    ]
    for path, body, field in cases:
        refused = httpx.post(server.base_url + path, content=body, headers=headers, timeout=10)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == field and "surrogate" in error["message"]
    nested = httpx.post(
        server.base_url + "/chat/completions",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers=headers,
        timeout=10,
    )
    assert nested.status_code == 400 and "nested" in nested.json()["error"]["message"]
    assert not server.queue.busy
    answer = client(server).chat.completions.create(
        model="any", messages=CHAT, max_tokens=4, temperature=0
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 4


def _target_only_server(tiny_models: TinyModels, max_waiting: int = MAX_WAITING) -> ServerThread:
    """A server of its own (these tests hold or stop it), the target without a draft."""
    return ServerThread(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=2),
        None,
        GenerationSettings(n_predict=-1, drafting=DraftSettings(source=DraftSource.NONE)),
        api_key=KEY,
        max_waiting=max_waiting,
    )


def test_a_request_whose_client_left_while_queued_frees_its_place(
    tiny_models: TinyModels,
) -> None:
    served = _target_only_server(tiny_models, max_waiting=1)
    try:
        url = served.base_url + "/chat/completions"
        headers = {"Authorization": f"Bearer {KEY}"}
        held = served.call(_hold_the_engine(served))  # as the window's answer would
        with pytest.raises(httpx.TimeoutException):  # waits, then its client gives up
            httpx.post(url, json={"messages": CHAT, "max_tokens": 4}, headers=headers, timeout=1.5)
        entry = last_entry(served, "POST /v1/chat/completions")
        assert (entry.status, entry.note) == (499, "client left while queued")
        # Its place is free: the next request may wait instead of getting 503.
        waiting: list[int] = []
        thread = threading.Thread(
            target=lambda: waiting.append(
                httpx.post(
                    url, json={"messages": CHAT, "max_tokens": 4}, headers=headers, timeout=60
                ).status_code
            )
        )
        thread.start()
        time.sleep(0.5)
        served.loop.call_soon_threadsafe(held.release)
        thread.join(timeout=60)
        assert waiting == [200]
    finally:
        served.close()


async def _hold_the_engine(served: ServerThread) -> Turn:
    turn = served.queue.turn("window")
    await turn.begin()
    return turn


def test_stopping_the_server_ends_open_streams_with_a_closing_error_event(
    tiny_models: TinyModels,
) -> None:
    served = _target_only_server(tiny_models)
    try:
        body = {"messages": CHAT, "max_tokens": 480, "temperature": 0, "stream": True}
        with httpx.stream(
            "POST",
            served.base_url + "/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        ) as stream:
            lines = stream.iter_lines()
            next(lines)
            assert served.server is not None
            stopping = threading.Thread(target=lambda: served.call(served.server.stop()))
            stopping.start()
            rest = [line for line in lines if line.startswith("data: ")]  # ends, not cut
        stopping.join(timeout=30)
        last = json.loads(rest[-1].removeprefix("data: "))
        assert last["error"]["code"] == "shutting_down", rest[-3:]
        assert "shutting down" in last["error"]["message"]
        entry = last_entry(served, "POST /v1/chat/completions")
        assert entry.status == 503 and entry.tokens < 480
    finally:
        served.close()


def test_a_model_is_retrieved_by_id_and_large_max_tokens_is_capped(server: ServerThread) -> None:
    model = client(server).models.retrieve("tiny-target.gguf")
    assert model.id == "tiny-target.gguf"
    with pytest.raises(openai.NotFoundError, match=r"the loaded model is tiny-target\.gguf"):
        client(server).models.retrieve("gpt-4")
    # Clients send large defaults; the answer ends when the context (512) is full.
    answer = client(server).completions.create(
        model="any", prompt="Once upon a time", max_tokens=100_000, temperature=0, stop=["."]
    )
    assert answer.usage is not None and 0 < answer.usage.completion_tokens < 512


def test_stopping_the_server_answers_a_waiting_whole_request_with_its_token_count(
    tiny_models: TinyModels,
) -> None:
    served = _target_only_server(tiny_models)
    try:
        responses: list[httpx.Response] = []
        body = {"messages": CHAT, "max_tokens": 480, "temperature": 0}
        request = threading.Thread(
            target=lambda: responses.append(
                httpx.post(
                    served.base_url + "/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=60,
                )
            )
        )
        request.start()
        deadline = time.monotonic() + 30
        while not served.queue.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert served.server is not None
        served.call(served.server.stop())
        request.join(timeout=30)
        (response,) = responses
        if response.status_code == 200:
            pytest.skip("the answer finished before the stop landed")
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        entry = last_entry(served, "POST /v1/chat/completions")
        assert entry.status == 503 and entry.tokens > 0
        assert f"stopped after {entry.tokens} tokens" in message
    finally:
        served.close()
