"""A 10 ms heartbeat on the GUI thread: how late each beat fires while the window works.

Shared by the window and download benchmarks so their stall numbers compare. Qt is
imported when a heartbeat is made, so importing this module has no side effects.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

HEARTBEAT_MS = 10


@dataclass
class Stalls:
    """How late each heartbeat fired, and how much of that the GUI thread spent working.

    On a shared machine a late beat can just mean the process waited for a core;
    the GUI thread's own CPU time between two beats is what our code cost.
    """

    lateness_ms: list[float] = field(default_factory=list)
    busy_ms: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.lateness_ms:
            return "no heartbeats recorded"
        late = sorted(self.lateness_ms)
        busy = sorted(self.busy_ms)
        p99 = late[min(len(late) - 1, int(0.99 * len(late)))]
        busy_p99 = busy[min(len(busy) - 1, int(0.99 * len(busy)))]
        return (
            f"{len(late)} beats of {HEARTBEAT_MS} ms; worst beat {late[-1]:.1f} ms late "
            f"(p99 {p99:.1f}, median {statistics.median(late):.1f}); GUI thread's own work "
            f"between two beats: worst {busy[-1]:.1f} ms, p99 {busy_p99:.1f} ms"
        )


class Heartbeat:
    """A precise 10 ms timer that records how late each beat fires while armed."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.stalls = Stalls()
        self.armed = False
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self.timer = QTimer()
        self.timer.setObjectName("bench_heartbeat")
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.timer.start()

    def _beat(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self.armed:
            self.stalls.lateness_ms.append(max(0.0, (now - self._last) * 1000 - HEARTBEAT_MS))
            self.stalls.busy_ms.append((cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu

    def arm(self, on: bool) -> None:
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self.armed = on
