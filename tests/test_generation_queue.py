"""The engine's generation queue: FIFO turns, a bound for the server, clean leaving."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import EngineError
from core.worker.generation_queue import GenerationQueue, QueueFullError


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
