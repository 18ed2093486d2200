"""Fewer decode threads while other programs keep cores busy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.engine import (
    DraftSettings,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.engine.cpu_contention import (
    SAMPLE_EVERY_S,
    DecodeThreads,
    OtherProgramsCpu,
    threads_beside,
)
from tests.conftest import TinyModels


class FakeMachine:
    """/proc/stat of a machine whose other programs keep ``others`` cores busy, a
    process using ``own`` cores, and a clock the test moves."""

    def __init__(self, path: Path, cpus: int = 2) -> None:
        self.path = path
        self.cpus = cpus
        self.now = 100.0
        self.busy_s = 0.0
        self.own_s = 0.0
        self.others = 0.0
        self.own = 0.0
        self._write()
        self.usage = OtherProgramsCpu(self.path, lambda: self.own_s, lambda: self.now)

    def look_after(self, seconds: float) -> None:
        """Let ``seconds`` pass, then the background thread's look."""
        self.now += seconds
        self.own_s += self.own * seconds
        self.busy_s += (self.others + self.own) * seconds
        self._write()
        self.usage.look()

    def _write(self) -> None:
        busy = round(self.busy_s * 100)  # 100 ticks per second
        idle = round(self.now * 100 * self.cpus) - busy
        self.path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n")


@dataclass
class FakeModel:
    n_threads: int
    decode_threads: int = 0

    def __post_init__(self) -> None:
        self.decode_threads = self.decode_threads or self.n_threads

    def set_decode_threads(self, count: int) -> None:
        self.decode_threads = max(1, min(count, self.n_threads))


def test_threads_left_by_other_programs() -> None:
    assert threads_beside(0.0, cpus=2, most=2) == 2
    assert threads_beside(0.3, cpus=2, most=2) == 2  # a light background load
    assert threads_beside(0.7, cpus=2, most=2) == 1  # one core mostly taken
    assert threads_beside(2.0, cpus=2, most=2) == 1  # never below one
    assert threads_beside(4.2, cpus=16, most=8) == 8  # never above what was loaded
    assert threads_beside(10.0, cpus=16, most=8) == 6


def test_other_programs_cpu_excludes_this_process(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path / "stat")
    assert machine.usage.available
    assert machine.usage.recent == ()
    machine.others, machine.own = 1.0, 0.9
    machine.look_after(2.0)
    machine.others = 0.25
    machine.look_after(1.0)
    assert machine.usage.recent == pytest.approx((1.0, 0.25), abs=0.02)
    machine.look_after(1.0)
    assert len(machine.usage.recent) == 2  # the latest two only
    missing = OtherProgramsCpu(tmp_path / "missing")
    assert not missing.available
    missing.look()
    assert missing.recent == ()


def test_count_changes_when_two_looks_agree_and_follows_the_load_back(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path / "stat")
    target, draft = FakeModel(2), FakeModel(2)
    threads = DecodeThreads([target, draft], 2, machine.usage)
    assert threads.active
    threads.update()  # no looks yet
    machine.look_after(SAMPLE_EVERY_S)
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    assert threads.current == 2

    machine.others = 1.0
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    assert threads.current == 2, "one look is not enough"
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    assert threads.current == 1
    assert (target.decode_threads, draft.decode_threads) == (1, 1)

    # A pause that ends at once leaves the count alone.
    machine.others = 0.0
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    machine.others = 1.0
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    assert threads.current == 1

    machine.others = 0.0
    machine.look_after(SAMPLE_EVERY_S)
    machine.look_after(SAMPLE_EVERY_S)
    threads.update()
    assert threads.current == 2
    assert (target.decode_threads, draft.decode_threads) == (2, 2)


def test_a_new_answer_starts_where_the_last_one_left(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path / "stat")
    target = FakeModel(2, decode_threads=1)
    new_draft = FakeModel(2)  # loaded since, at its most
    threads = DecodeThreads([target, new_draft], 2, machine.usage)
    assert threads.current == 1
    assert new_draft.decode_threads == 1
    single = DecodeThreads([FakeModel(1)], 2, machine.usage)
    assert not single.active  # one thread (a model wholly on a GPU): nothing to decide


def test_the_background_look_runs_until_stopped(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path / "stat")
    machine.usage.start()
    try:
        deadline = time.monotonic() + 10 * SAMPLE_EVERY_S
        while not machine.usage.recent and time.monotonic() < deadline:
            machine.now += SAMPLE_EVERY_S  # the fake clock moves while the thread waits
            time.sleep(SAMPLE_EVERY_S / 5)
        assert machine.usage.recent, "the background thread never looked"
    finally:
        machine.usage.stop()


@pytest.fixture
def two_thread_engine(tiny_models: TinyModels) -> Iterator[SpeculativeEngine]:
    engine = SpeculativeEngine(
        ModelConfig(tiny_models.target, n_ctx=512, n_threads=2),
        ModelConfig(tiny_models.draft, n_threads=2),
    )
    yield engine
    engine.close()


def test_engine_decodes_with_one_thread_beside_a_busy_program_and_answers_the_same(
    two_thread_engine: SpeculativeEngine, tmp_path: Path
) -> None:
    engine = two_thread_engine
    settings = GenerationSettings(
        n_predict=40,
        sampling=SamplingSettings(temperature=0.0),
        drafting=DraftSettings(n_max=4, adaptive=False),
    )
    prompt = engine.tokenize("the cat")
    machine = FakeMachine(tmp_path / "stat")
    engine._other_programs.stop()
    engine._other_programs = machine.usage
    machine.look_after(SAMPLE_EVERY_S)
    machine.look_after(SAMPLE_EVERY_S)
    quiet = collect(engine.generate(prompt, settings))
    assert engine.target.decode_threads == 2

    # Another program keeps a core busy: the answer starts with one thread.
    machine.others = 1.0
    machine.look_after(SAMPLE_EVERY_S)
    machine.look_after(SAMPLE_EVERY_S)
    busy = collect(engine.generate(prompt, settings))
    assert engine.target.decode_threads == 1
    assert engine.draft is not None and engine.draft.decode_threads == 1
    assert [t.id for t in busy.tokens] == [t.id for t in quiet.tokens]
