"""Cyclic garbage is collected on the GUI thread, never in a helper thread."""

from __future__ import annotations

import gc
import threading
import weakref

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from gui.main_thread_gc import MainThreadGarbageCollector


class _TimerInACycle(QObject):
    """A QObject with a running timer that refers to itself, like a widget whose
    slots are bound methods: only the cyclic collector can free it."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.start(60_000)
        self.itself = self


def _make_garbage_in_a_thread() -> None:
    def churn() -> None:
        for _ in range(20_000):
            cycle: list[object] = []
            cycle.append(cycle)

    thread = threading.Thread(target=churn, name="garbage-maker")
    thread.start()
    thread.join()


def test_a_cycle_holding_a_timer_is_freed_on_the_gui_thread(qapp: QApplication) -> None:
    collector = MainThreadGarbageCollector()
    try:
        assert not gc.isenabled()
        holder = weakref.ref(_TimerInACycle())
        # Far past every threshold, but in another thread: nothing is collected there
        # (had it been, Qt would warn about stopping the timer from another thread,
        # which fails this test through pytest-qt's log check).
        _make_garbage_in_a_thread()
        assert holder() is not None
        assert collector.collect_due() >= 0
        gc.collect()
        assert holder() is None
    finally:
        collector.stop()
    assert gc.isenabled()
    gc.disable()  # the suite's fixture keeps automatic collection off during tests


def test_nothing_due_collects_nothing(qapp: QApplication) -> None:
    collector = MainThreadGarbageCollector()
    try:
        gc.collect()
        assert collector.collect_due() == -1
    finally:
        collector.stop()
    gc.disable()
