"""Python's cyclic garbage collector, run on the GUI thread only.

A collection runs in whichever thread happens to allocate past the threshold: in
this process that can be the store's checkpoint thread, the engine client's pipe
readers or an executor thread. A widget caught in a reference cycle (slots bound to
methods, lambdas holding ``self``) is then destroyed there, and Qt objects must die
on the thread that owns them: Qt warns "Timers cannot be stopped from another
thread" and can crash. So automatic collection is switched off and a timer on the
GUI thread collects instead, generation by generation with the interpreter's own
thresholds, which keeps each pass as short as automatic collection would be.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

COLLECT_INTERVAL_MS = 500


class MainThreadGarbageCollector(QObject):
    """Disables automatic collection while it lives; collects from a GUI-thread timer."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setObjectName("main_thread_gc_timer")
        self._timer.setInterval(COLLECT_INTERVAL_MS)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold (as the
        interpreter would have); returns the generation collected, or -1."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return generation
        return -1

    def stop(self) -> None:
        """Hand collection back to the interpreter (after a final pass here)."""
        self._timer.stop()
        gc.collect()
        gc.enable()
