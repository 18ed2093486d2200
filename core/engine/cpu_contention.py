"""Decode with fewer CPU threads while other programs keep cores busy.

llama.cpp's CPU threads meet at a spinning barrier after every graph node. When
another program holds one of the cores, the thread waiting for that core holds up
all the others for a scheduler slice, at every node. Measured on 2 cores with the
demo pair (96 tokens, greedy):

| beside it          | 2 threads | 1 thread |
|--------------------|-----------|----------|
| nothing            | 62.7 t/s  | 37.0 t/s |
| one busy process   | 14.6 t/s  | 36.9 t/s |
| two busy processes | 10.5 t/s  | 18.7 t/s |

So the engine watches how many cores the rest of the machine keeps busy (Linux's
``/proc/stat`` less this process's own CPU time) and decodes with the cores left
over, never more than the models were loaded with. The thread count does not
change any result: llama.cpp splits a product's output rows among threads, never
a sum.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

# Seconds between two looks at the machine: long enough for /proc/stat's 10 ms
# ticks to mean something, short enough to follow a build that starts mid-answer.
SAMPLE_EVERY_S = 0.5
_PROC_STAT = Path("/proc/stat")


class ThreadCountable(Protocol):
    """A model whose decode thread count can change between decodes."""

    n_threads: int
    decode_threads: int

    def set_decode_threads(self, count: int) -> None: ...


class OtherProgramsCpu:
    """How many cores everything but this process kept busy, looked at every
    ``SAMPLE_EVERY_S`` by a small background thread (``start``), so an answer
    starts with a fresh view: its prompt is one long decode, too long to wait for."""

    def __init__(
        self,
        stat_path: Path = _PROC_STAT,
        own_cpu_seconds: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stat_path = stat_path
        self._own_cpu_seconds = own_cpu_seconds or _own_cpu_seconds
        self._clock = clock
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        self._last: tuple[float, float, float] | None = self._read()
        # The two latest looks, newest last (deque appends are atomic).
        self._looks: deque[float] = deque(maxlen=2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self._last is not None

    @property
    def recent(self) -> tuple[float, ...]:
        """Cores used by other programs in the latest looks, oldest first."""
        return tuple(self._looks)

    def start(self) -> None:
        """Look every ``SAMPLE_EVERY_S`` until ``stop`` (nothing without /proc/stat)."""
        if self._thread is not None or not self.available:
            return
        self._thread = threading.Thread(target=self._watch, name="specchat-cpu-use", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.look()

    def look(self) -> None:
        previous, current = self._last, self._read()
        self._last = current
        if previous is None or current is None or current[0] <= previous[0]:
            return
        others = (current[1] - previous[1]) - (current[2] - previous[2])
        self._looks.append(max(0.0, others / (current[0] - previous[0])))

    def _read(self) -> tuple[float, float, float] | None:
        """(wall, machine's busy CPU seconds, this process's CPU seconds)."""
        try:
            first_line = self._stat_path.read_text().split("\n", 1)[0]
        except OSError:
            return None  # not Linux, or /proc not mounted
        fields = first_line.split()
        if len(fields) < 5 or fields[0] != "cpu":
            return None
        ticks = [int(value) for value in fields[1:9]]
        # user nice system idle iowait irq softirq steal: idle and iowait are free.
        busy = sum(ticks) - ticks[3] - ticks[4]
        return self._clock(), busy * self._tick_s, self._own_cpu_seconds()


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def threads_beside(others: float, cpus: int, most: int) -> int:
    """Threads to decode with when other programs keep ``others`` cores busy: one per
    core they leave (a core half used counts as taken), at least 1, at most ``most``."""
    return max(1, min(most, cpus - math.floor(others + 0.5)))


class DecodeThreads:
    """Keeps the models' decode thread count at what the machine leaves free.

    ``update`` is cheap enough for every step: it reads the background thread's
    latest looks and changes the count only when the two latest agree, so a short
    burst of another program does not flip it back and forth.
    """

    def __init__(
        self, models: Sequence[ThreadCountable], cpus: int, usage: OtherProgramsCpu
    ) -> None:
        self._models = list(models)
        self._cpus = cpus
        self._usage = usage
        self._most = max((model.n_threads for model in self._models), default=1)
        # Where the last answer left the count (a draft loaded since starts at its most).
        self.current = min((model.decode_threads for model in self._models), default=1)
        for model in self._models:
            model.set_decode_threads(self.current)

    @property
    def active(self) -> bool:
        """Whether there is anything to decide: several threads and a way to look."""
        return self._most > 1 and self._usage.available

    def update(self) -> None:
        if not self.active:
            return
        looks = self._usage.recent
        if len(looks) < 2:
            return
        wanted = {threads_beside(others, self._cpus, self._most) for others in looks}
        if len(wanted) != 1:
            return  # the looks disagree: wait
        count = wanted.pop()
        if count != self.current:
            self.current = count
            for model in self._models:
                model.set_decode_threads(count)
