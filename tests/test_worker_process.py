"""The engine in its own process: real child processes running real llama.cpp.

Each test drives an EngineWorker from a fresh asyncio loop (no Qt), on the tiny
generated models, and compares what crosses the pipe with the in-process engine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    Event,
    FinishedEvent,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    StepEvent,
    StopReason,
)
from core.errors import (
    ConfigError,
    EngineError,
    InsufficientMemoryError,
    ModelFileError,
    PromptTooLongError,
    VocabMismatchError,
)
from core.gguf_meta import read_gguf_metadata
from core.library.memory import SystemMemory
from core.worker import EngineWorker, PairInfo, WorkerCrashedError, protocol
from core.worker import client as client_module
from tests.conftest import TinyModels

T = TypeVar("T")
GREEDY = SamplingSettings(temperature=0.0)


@pytest.fixture(autouse=True)
def _test_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lets tests make the child abort or print to fd 1; the child inherits the env.
    monkeypatch.setenv(protocol.TEST_HOOKS_ENV, "1")


def run(scenario: Callable[[EngineWorker], Awaitable[T]], **options: Any) -> T:
    """Run ``scenario`` with a fresh worker on a fresh loop; always close the worker."""

    async def main() -> T:
        worker = EngineWorker(**options)
        try:
            return await asyncio.wait_for(scenario(worker), 60)
        finally:
            await worker.close()

    return asyncio.run(main())


def target_config(models: TinyModels, n_threads: int = 1) -> ModelConfig:
    # Comparisons with the tiny_engine fixture pass its 2 threads; one thread is
    # enough elsewhere and does not spin-wait on a busy 2-core machine.
    return ModelConfig(models.target, n_ctx=512, n_threads=n_threads)


def draft_config(models: TinyModels, n_threads: int = 1) -> ModelConfig:
    return ModelConfig(models.draft, n_threads=n_threads)


def step_signature(events: list[Event]) -> list[tuple[Any, ...]]:
    """Everything in an event stream except timings."""
    signature: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, StepEvent):
            signature.append(
                (
                    tuple((t.id, t.text, t.provenance) for t in event.tokens),
                    tuple((t.id, t.text) for t in event.rejected),
                    event.n_drafted,
                    event.n_accepted,
                )
            )
        else:
            stats = event.stats
            signature.append(
                (event.stop_reason, stats.n_predict, stats.n_drafted, stats.n_accept, stats.n_steps)
            )
    return signature


async def collect_events(
    worker: EngineWorker, prompt: list[int], settings: GenerationSettings
) -> list[Event]:
    return [event async for event in worker.generate(prompt, settings)]


async def state(worker: EngineWorker) -> dict[str, Any]:
    result: dict[str, Any] = await worker._call(protocol.STATE)
    return result


@pytest.fixture(scope="module")
def chat() -> list[ChatMessage]:
    return [ChatMessage("user", "the cat and the dog")]


def test_streamed_events_equal_the_in_process_engine(
    tiny_models: TinyModels, tiny_engine: SpeculativeEngine, chat: list[ChatMessage]
) -> None:
    settings = GenerationSettings(
        n_predict=60, sampling=GREEDY, drafting=DraftSettings(n_max=4, adaptive=False)
    )
    progress: list[tuple[str, float]] = []

    async def scenario(worker: EngineWorker) -> tuple[PairInfo, list[int], list[Event]]:
        info = await worker.load(
            target_config(tiny_models, n_threads=2),
            draft_config(tiny_models, n_threads=2),
            on_progress=lambda which, fraction: progress.append((which, fraction)),
        )
        prompt = await worker.tokenize_chat(chat)
        # Native prints to fd 1 must not corrupt the protocol channel.
        await worker._call(protocol.DEBUG, kind="stdout_noise")
        return info, prompt, await collect_events(worker, prompt, settings)

    info, prompt, events = run(scenario)
    assert prompt == tiny_engine.tokenize_chat(chat)
    expected = list(tiny_engine.generate(prompt, settings))
    assert step_signature(events) == step_signature(expected)
    assert isinstance(events[-1], FinishedEvent)
    assert events[-1].stats.n_accept > 0, "the comparison should cover accepted drafts"

    assert info.target_path == str(tiny_models.target)
    assert info.draft_path == str(tiny_models.draft)
    assert info.n_ctx == 512 and info.has_chat_template
    assert info.backend == "CPU" and info.device  # this machine has no GPU
    assert (info.target_gpu_layers, info.draft_gpu_layers) == (0, 0)
    # llama.cpp's own progress, both models, ending at 1.0, in order.
    assert progress[0][0] == "target"
    assert ("target", 1.0) in progress and progress[-1] == ("draft", 1.0)
    target_fractions = [fraction for which, fraction in progress if which == "target"]
    assert target_fractions == sorted(target_fractions)


def test_cancel_mid_answer_and_leaving_the_loop_early(
    tiny_models: TinyModels, chat: list[ChatMessage]
) -> None:
    long_answer = GenerationSettings(
        n_predict=400, sampling=GREEDY, drafting=DraftSettings(source=DraftSource.NONE)
    )

    async def scenario(worker: EngineWorker) -> tuple[list[Event], list[Event]]:
        await worker.load(target_config(tiny_models), None)
        prompt = await worker.tokenize_chat(chat)
        cancelled: list[Event] = []
        async for event in worker.generate(prompt, long_answer):
            cancelled.append(event)
            if len(cancelled) == 3:
                await worker.cancel()
        # Abandoning an answer cancels it in the child, so the next one starts at once.
        async for _event in worker.generate(prompt, long_answer):
            break
        short = GenerationSettings(n_predict=5, sampling=GREEDY, drafting=long_answer.drafting)
        return cancelled, await collect_events(worker, prompt, short)

    cancelled, after = run(scenario)
    finished = cancelled[-1]
    assert isinstance(finished, FinishedEvent)
    assert finished.stop_reason is StopReason.CANCELLED
    assert finished.stats.n_predict < 100
    assert isinstance(after[-1], FinishedEvent)
    assert after[-1].stop_reason is StopReason.MAX_TOKENS
    assert after[-1].stats.n_predict == 5


def test_cancelling_a_load_aborts_it_in_llama_cpp(tiny_models: TinyModels) -> None:
    async def scenario(worker: EngineWorker) -> tuple[int | None, int | None, dict[str, Any]]:
        await worker.start()
        pid = worker.pid
        worker._test_progress_delay_s = 0.2  # about 4 s per tiny model without a cancel
        started = asyncio.Event()
        load = asyncio.create_task(
            worker.load(
                target_config(tiny_models),
                draft_config(tiny_models),
                on_progress=lambda _which, _fraction: started.set(),
            )
        )
        await started.wait()
        load.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(load, 3)  # far less than the slowed load would take
        after_cancel = await state(worker)
        worker._test_progress_delay_s = 0.0
        await worker.load(target_config(tiny_models), None)
        return pid, worker.pid, after_cancel

    pid_before, pid_after, after_cancel = run(scenario)
    assert pid_after == pid_before  # aborted through llama.cpp, not by killing the process
    assert after_cancel["target"] is None and after_cancel["target_loads"] == 0


def test_a_load_that_ignores_the_cancel_is_ended_by_stopping_the_process(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "LOAD_ABORT_TIMEOUT_S", 0.05)
    crashes: list[WorkerCrashedError] = []

    async def scenario(worker: EngineWorker) -> tuple[bool, int | None, int | None]:
        await worker.start()
        pid = worker.pid
        worker._test_progress_delay_s = 1.0  # llama.cpp sees the cancel only after this
        started = asyncio.Event()
        load = asyncio.create_task(
            worker.load(target_config(tiny_models), None, lambda _w, _f: started.set())
        )
        await started.wait()
        load.cancel()
        with pytest.raises(asyncio.CancelledError):
            await load
        stopped = not worker.running
        worker._test_progress_delay_s = 0.0
        await worker.load(target_config(tiny_models), None)  # a fresh process
        return stopped, pid, worker.pid

    stopped, pid_before, pid_after = run(scenario, on_crash=crashes.append)
    assert stopped and pid_after != pid_before
    assert crashes == []  # stopping it on purpose is not a crash


def test_killed_mid_answer_reports_sigkill_and_reloads(
    tiny_models: TinyModels, chat: list[ChatMessage]
) -> None:
    crashes: list[WorkerCrashedError] = []
    long_answer = GenerationSettings(n_predict=400, sampling=GREEDY)

    async def scenario(worker: EngineWorker) -> tuple[list[Event], WorkerCrashedError, list[Event]]:
        await worker.load(target_config(tiny_models), draft_config(tiny_models))
        prompt = await worker.tokenize_chat(chat)
        partial: list[Event] = []
        with pytest.raises(WorkerCrashedError) as crash:
            async for event in worker.generate(prompt, long_answer):
                partial.append(event)
                if len(partial) == 2:
                    assert worker.pid is not None
                    os.kill(worker.pid, signal.SIGKILL)
        assert not worker.running
        await worker.load(target_config(tiny_models), draft_config(tiny_models))
        short = GenerationSettings(n_predict=10, sampling=GREEDY)
        return partial, crash.value, await collect_events(worker, prompt, short)

    partial, error, after = run(scenario, on_crash=crashes.append)
    assert len(partial) >= 2  # what arrived before the crash stays with the caller
    assert error.signal_name == "SIGKILL" and error.exit_code is None
    assert "SIGKILL" in str(error) and "memory" in str(error)
    assert crashes == [error]
    assert isinstance(after[-1], FinishedEvent) and after[-1].stats.n_predict == 10


def _thread_nice_values(pid: int) -> set[int]:
    # Linux keeps a nice value per thread; /proc lists the process's threads.
    return {
        os.getpriority(os.PRIO_PROCESS, int(thread)) for thread in os.listdir(f"/proc/{pid}/task")
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("below_normal", [True, False])
def test_a_below_normal_engine_runs_every_thread_below_the_client(
    tiny_models: TinyModels, chat: list[ChatMessage], below_normal: bool
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    expected = min(own + client_module.BELOW_NORMAL_NICE, 19) if below_normal else own
    answer = GenerationSettings(n_predict=40, sampling=GREEDY)

    async def scenario(worker: EngineWorker) -> set[int]:
        # Two threads each: llama.cpp's compute threads exist while it decodes.
        await worker.load(target_config(tiny_models, 2), draft_config(tiny_models, 2))
        prompt = await worker.tokenize_chat(chat)
        seen: set[int] = set()
        async for _event in worker.generate(prompt, answer):
            assert worker.pid is not None
            seen |= _thread_nice_values(worker.pid)
        return seen

    seen = run(scenario, below_normal_priority=below_normal)
    assert seen == {expected}
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the client itself is untouched


def test_native_crashes_are_reported_in_words(tiny_models: TinyModels) -> None:
    async def scenario(worker: EngineWorker) -> tuple[WorkerCrashedError, WorkerCrashedError]:
        await worker.load(target_config(tiny_models), None)
        with pytest.raises(WorkerCrashedError) as abort:
            await worker._call(protocol.DEBUG, kind="ggml_abort")
        with pytest.raises(EngineError, match="not running"):
            await worker.tokenize("after the crash")  # refused at once, not hung
        await worker.load(target_config(tiny_models), None)
        with pytest.raises(WorkerCrashedError) as segfault:
            await worker._call(protocol.DEBUG, kind="segfault")
        return abort.value, segfault.value

    abort, segfault = run(scenario)
    assert abort.signal_name == "SIGABRT"
    assert "SIGABRT" in str(abort)
    # ggml's own last words, as a failed GGML_ASSERT prints them.
    assert "GGML_ASSERT(test_hook) failed" in abort.last_log
    assert "GGML_ASSERT(test_hook) failed" in str(abort)
    assert segfault.signal_name == "SIGSEGV"
    assert "segmentation fault (SIGSEGV)" in str(segfault)
    assert "Fatal Python error" in segfault.log_tail  # faulthandler's traceback is kept


def test_a_pair_that_will_not_fit_is_refused_with_the_numbers(tiny_models: TinyModels) -> None:
    small = SystemMemory(total_ram_bytes=1 << 30, available_ram_bytes=16 << 20)

    async def scenario(
        worker: EngineWorker,
    ) -> tuple[InsufficientMemoryError, dict[str, Any], InsufficientMemoryError, dict[str, Any]]:
        with pytest.raises(InsufficientMemoryError) as refusal:
            await worker.load(target_config(tiny_models), draft_config(tiny_models))
        after_refusal = await state(worker)
        # A pair that is loaded stays loaded when its replacement is refused.
        worker._system_memory = None
        await worker.load(target_config(tiny_models), None)
        worker._system_memory = small
        with pytest.raises(InsufficientMemoryError) as second:
            await worker.set_draft(draft_config(tiny_models))
        return refusal.value, after_refusal, second.value, await state(worker)

    error, after, draft_error, kept = run(scenario, system_memory=small)
    assert error.ram_available_bytes == 16 << 20
    assert error.ram_needed_bytes > error.ram_available_bytes
    assert error.vram_needed_bytes == 0 and error.vram_free_bytes is None
    assert "GiB of RAM" in str(error) and "0.02 GiB is available" in str(error)
    assert after["target_loads"] == 0  # refused before llama.cpp saw it
    assert draft_error.ram_needed_bytes > draft_error.ram_available_bytes
    assert kept["target"] == str(tiny_models.target) and kept["draft"] is None
    assert kept["target_loads"] == 1 and kept["draft_loads"] == 0


def test_replacing_the_draft_keeps_the_target_loaded(
    tiny_models: TinyModels, tiny_engine: SpeculativeEngine, chat: list[ChatMessage]
) -> None:
    settings = GenerationSettings(
        n_predict=40, sampling=GREEDY, drafting=DraftSettings(n_max=3, adaptive=False)
    )

    async def scenario(worker: EngineWorker) -> dict[str, Any]:
        await worker.load(target_config(tiny_models, n_threads=2), None)
        pid = worker.pid
        prompt = await worker.tokenize_chat(chat)
        with pytest.raises(ConfigError, match="needs a draft model"):
            await collect_events(worker, prompt, settings)
        info = await worker.set_draft(draft_config(tiny_models, n_threads=2))
        assert info.draft_path == str(tiny_models.draft)
        with_draft = await collect_events(worker, prompt, settings)
        assert step_signature(with_draft) == step_signature(
            list(tiny_engine.generate(prompt, settings))
        )
        with pytest.raises(VocabMismatchError) as mismatch:
            await worker.set_draft(ModelConfig(tiny_models.other_vocab, n_threads=2))
        assert "tiny-other-vocab.gguf cannot draft for tiny-target.gguf" in str(mismatch.value)
        kept = await state(worker)
        assert kept["draft"] == str(tiny_models.draft)  # the refused draft changed nothing
        info = await worker.set_draft(None)
        assert info.draft_path is None
        plain = GenerationSettings(
            n_predict=40, sampling=GREEDY, drafting=DraftSettings(source=DraftSource.NONE)
        )
        assert step_signature(await collect_events(worker, prompt, plain))[-1][1] == 40
        assert worker.pid == pid
        return await state(worker)

    final = run(scenario)
    assert final["target_loads"] == 1 and final["draft_loads"] == 1
    assert final["draft"] is None


def test_host_errors_map_to_the_same_classes_and_messages(
    tiny_models: TinyModels, tmp_path: Any
) -> None:
    missing = tmp_path / "missing.gguf"
    with pytest.raises(ModelFileError) as local_missing:
        read_gguf_metadata(missing)
    with pytest.raises(VocabMismatchError) as local_mismatch:
        SpeculativeEngine(target_config(tiny_models), ModelConfig(tiny_models.other_vocab))

    async def scenario(worker: EngineWorker) -> None:
        with pytest.raises(EngineError, match="not running"):
            await worker.tokenize("x")  # only start() and load() start the process
        await worker.start()
        with pytest.raises(ConfigError, match="no model is loaded"):
            await worker.tokenize("x")
        loaded = await worker.load(target_config(tiny_models), None)
        with pytest.raises(ModelFileError) as remote_missing:
            await worker.load(ModelConfig(missing), None)
        assert str(remote_missing.value) == str(local_missing.value)
        with pytest.raises(VocabMismatchError) as remote_mismatch:
            await worker.load(target_config(tiny_models), ModelConfig(tiny_models.other_vocab))
        assert str(remote_mismatch.value) == str(local_mismatch.value)
        # Refused before loading: the loaded pair is still there.
        assert worker.pair_info == loaded
        assert (await state(worker))["target"] == str(tiny_models.target)
        with pytest.raises(PromptTooLongError, match="the prompt is empty"):
            await collect_events(worker, [], GenerationSettings())
        await worker.unload()
        assert (await state(worker))["target"] is None

    run(scenario)


def test_a_custom_entry_command_and_closing_mid_answer(
    tiny_models: TinyModels, chat: list[ChatMessage]
) -> None:
    # How a frozen app starts the engine: its own executable with HOST_ARGUMENT.
    entry = "import sys; from core.worker.host import run_if_requested; run_if_requested(sys.argv)"
    command = [sys.executable, "-c", entry, protocol.HOST_ARGUMENT]
    crashes: list[WorkerCrashedError] = []

    async def scenario(worker: EngineWorker) -> list[Event]:
        await worker.load(target_config(tiny_models), None)
        prompt = await worker.tokenize_chat(chat)
        events: list[Event] = []
        # Greedy: a sampled answer of the tiny model may end (EOS) before the close lands.
        plain = GenerationSettings(
            n_predict=400, sampling=GREEDY, drafting=DraftSettings(source=DraftSource.NONE)
        )
        async for event in worker.generate(prompt, plain):
            events.append(event)
            if len(events) == 2:
                # Closing stops the answer cleanly: it still ends with a FinishedEvent.
                await worker.close()
        assert not worker.running
        return events

    events = run(scenario, command=command, on_crash=crashes.append)
    assert isinstance(events[-1], FinishedEvent)
    assert events[-1].stop_reason is StopReason.CANCELLED
    assert crashes == []


@pytest.mark.demo_pair
def test_demo_pair_answers_in_the_engine_process_exactly_as_in_process(
    demo_pair: Any, demo_engine: SpeculativeEngine
) -> None:
    messages = [ChatMessage("user", "Name three colours of the rainbow.")]
    settings = GenerationSettings(
        n_predict=16, sampling=GREEDY, drafting=DraftSettings(n_max=8, adaptive=False)
    )

    async def scenario(worker: EngineWorker) -> tuple[PairInfo, list[Event]]:
        info = await worker.load(
            ModelConfig(demo_pair.target, n_ctx=1024), ModelConfig(demo_pair.draft)
        )
        prompt = await worker.tokenize_chat(messages)
        return info, await collect_events(worker, prompt, settings)

    info, events = run(scenario)
    expected = list(demo_engine.generate(demo_engine.tokenize_chat(messages), settings))
    assert step_signature(events) == step_signature(expected)
    assert info.has_chat_template and info.n_ctx == 1024
    assert info.backend == "CPU" and info.device


def test_text_with_half_a_surrogate_pair_fails_the_call_instead_of_hanging(
    tiny_models: TinyModels,
) -> None:
    async def scenario(worker: EngineWorker) -> list[int]:
        await worker.load(target_config(tiny_models), None)
        with pytest.raises(EngineError, match="not text"):
            await asyncio.wait_for(worker.tokenize("hi \udc80 there"), 10)
        return await worker.tokenize("hi there")

    assert run(scenario)
