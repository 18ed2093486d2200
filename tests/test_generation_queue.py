"""The engine's generation queue: FIFO turns, a bound for the server, clean leaving."""

from __future__ import annotations

import asyncio

import pytest

from core.engine import Event, FinishedEvent, ModelConfig, StepEvent, StopReason
from core.errors import EngineError
from core.tune.runner import WorkerRunner
from core.worker.client import EngineWorker
from core.worker.generation_queue import GenerationQueue, QueueFullError, Turn
from tests.conftest import TinyModels
from tests.support.engine_settings import greedy_settings


def test_turns_run_one_at_a_time_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        queue = GenerationQueue(lambda: None, max_waiting=10)
        order: list[str] = []

        async def use(name: str) -> None:
            async with queue.turn(name):
                order.append(f"{name} in")
                await asyncio.sleep(0.01)
                order.append(f"{name} out")

        await asyncio.gather(*(use(name) for name in "abc"))
        assert not queue.busy
        return order

    assert asyncio.run(scenario()) == ["a in", "a out", "b in", "b out", "c in", "c out"]


def test_bounded_turns_are_refused_when_full_and_unbounded_ones_never() -> None:
    async def scenario() -> None:
        queue = GenerationQueue(lambda: None, max_waiting=1)
        running = queue.turn("first")
        waiting = queue.turn("second")
        assert queue.waiting == 1
        with pytest.raises(QueueFullError):
            queue.turn("third")
        window = queue.turn("window", bounded=False)
        assert queue.waiting == 2
        for turn in (running, waiting, window):
            turn.release()
        assert not queue.busy

    asyncio.run(scenario())


def test_a_waiter_that_gives_up_leaves_the_queue_and_the_next_goes_on() -> None:
    async def scenario() -> None:
        queue = GenerationQueue(lambda: None)
        first = queue.turn("first")
        async with first:
            gave_up = asyncio.ensure_future(queue.turn("impatient").__aenter__())
            patient = queue.turn("patient")
            await asyncio.sleep(0)
            gave_up.cancel()
            await asyncio.gather(gave_up, return_exceptions=True)
            assert queue.waiting == 1
        async with patient:
            # No engine running: the turn says so instead of failing obscurely.
            with pytest.raises(EngineError, match="no model pair is loaded"):
                _ = patient.worker
        assert not queue.busy

    asyncio.run(scenario())


def test_cancelling_one_turn_leaves_the_other_answer_whole(tiny_models: TinyModels) -> None:
    settings = greedy_settings(n=48, n_max=4)

    async def scenario() -> tuple[list[Event], list[Event], list[Event]]:
        worker = EngineWorker()
        try:
            await worker.load(
                ModelConfig(tiny_models.target, n_ctx=512, n_threads=1),
                ModelConfig(tiny_models.draft, n_threads=1),
            )
            queue = GenerationQueue(lambda: worker)
            prompt = await worker.tokenize("Once upon a time")

            async def answer(turn: Turn, cancel_after: int | None = None) -> list[Event]:
                events: list[Event] = []
                async with turn:
                    async for event in turn.generate(prompt, settings):
                        events.append(event)
                        if len(events) == cancel_after:
                            await turn.cancel()
                return events

            alone = await answer(queue.turn("alone"))
            first, second = queue.turn("api"), queue.turn("window", bounded=False)
            # The second is stopped while it still waits: its answer starts cancelled.
            await second.cancel()
            whole, stopped = await asyncio.gather(answer(first), answer(second))
            # Stopped mid-answer, the other turn unaffected.
            third, fourth = queue.turn("a"), queue.turn("b")
            cut, after = await asyncio.gather(answer(third, cancel_after=2), answer(fourth))
            assert isinstance(after[-1], FinishedEvent)
            assert after[-1].stop_reason is StopReason.MAX_TOKENS
            assert isinstance(cut[-1], FinishedEvent)
            assert cut[-1].stop_reason is StopReason.CANCELLED
            assert _text(after) == _text(alone)
            return alone, whole, stopped
        finally:
            await worker.close()

    alone, whole, stopped = asyncio.run(scenario())
    assert _text(whole) == _text(alone)
    finished = stopped[-1]
    assert isinstance(finished, FinishedEvent) and finished.stop_reason is StopReason.CANCELLED
    # Cancelled within its first engine step.
    assert finished.stats.n_steps <= 1


def _text(events: list[Event]) -> str:
    return "".join(event.text for event in events if isinstance(event, StepEvent))


def test_the_tuner_waits_its_turn_behind_the_window() -> None:
    # The Tune tab's runner queues like a chat answer or an API request: while another
    # turn holds the engine it does not start (here: no engine, so it fails only once
    # the holder has left, with the plain "no model pair" error).
    async def scenario() -> None:
        queue = GenerationQueue(lambda: None)
        runner = WorkerRunner(queue)
        window = queue.turn("window", bounded=False)
        async with window:
            answer = asyncio.ensure_future(runner.answer([1, 2], greedy_settings(4)))
            await asyncio.sleep(0.01)
            assert not answer.done() and queue.waiting == 1
        with pytest.raises(EngineError, match="no model pair is loaded"):
            await answer
        assert not queue.busy

    asyncio.run(scenario())
