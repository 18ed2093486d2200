"""The Tune tab: A/B and sweeps, run on the window's generation queue (its engine worker).

Signals:
    apply_requested(object): DraftSettings the user chose from a sweep, for the chat.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from core.engine import ChatMessage, GenerationSettings
from core.tune.runner import AnswerRunner, WorkerRunner
from core.worker.generation_queue import GenerationQueue
from gui.scrolling import scrolling
from gui.tune.ab_page import ABPage
from gui.tune.sweep_page import SweepPage


class TuneTab(QWidget):
    """A/B and Sweep pages over the window's generation queue (see the module docstring)."""

    apply_requested = Signal(object)

    def __init__(
        self,
        queue: GenerationQueue,
        loaded: Callable[[], bool],
        settings: Callable[[], GenerationSettings],
        conversation: Callable[[], list[ChatMessage]],
        pair_key: Callable[[], str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("tune_tab")
        self._queue = queue
        self._loaded = loaded
        self.ab_page = ABPage(self.runner, settings, conversation)
        self.sweep_page = SweepPage(self.runner, settings, conversation, pair_key)
        self.sweep_page.apply_requested.connect(self.apply_requested)
        pages = QTabWidget()
        pages.setObjectName("tune_pages")
        # Scrolling pages: the sweep's form, table and plots must not set the
        # window's minimum height.
        pages.addTab(scrolling(self.ab_page), "A/B")
        pages.addTab(scrolling(self.sweep_page), "Sweep")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(pages)

    def runner(self) -> AnswerRunner | None:
        """The loaded pair's engine worker; None while nothing is loaded."""
        worker = self._queue.worker()
        if worker is None or not worker.running or not self._loaded():
            return None
        return WorkerRunner(self._queue)
