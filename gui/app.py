"""Start the window on the qasync event loop: ``specchat`` or ``python -m gui``.

The window shows before anything heavy happens: no model is loaded and no engine
process is started until the user (or the first-run offer) asks for a pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import qasync
from PySide6.QtWidgets import QApplication, QMessageBox

from core.paths import APP_NAME
from core.store import ConversationStore, StoreError
from gui.main_window import MainWindow
from gui.theme import apply_theme

logger = logging.getLogger(__name__)


async def run_window(store: ConversationStore) -> int:
    """Show the window, wait until it is closed, then stop everything it started."""
    window = MainWindow(store=store)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    window.show()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        # Ctrl+C in the terminal or a logout closes the window the normal way, so the
        # answer being written is saved and the engine process stopped.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, window.close)
    try:
        await closed.wait()
    finally:
        # Before the loop closes: a running answer is saved and the engine process
        # stopped, or qasync's close would wait on them (or lose the answer).
        await window.shutdown()
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(list(argv or sys.argv))
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("specchat")
    # The window's close ends run_window; Qt quitting the loop on its own would
    # stop qasync before shutdown() has run.
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    try:
        store = ConversationStore()
    except StoreError as exc:
        QMessageBox.critical(None, "SpecChat cannot start", str(exc))
        return 1
    # Python 3.11: asyncio.run(loop_factory=...) needs 3.12, so qasync.run.
    result: int = qasync.run(run_window(store))
    return result


if __name__ == "__main__":
    sys.exit(main())
