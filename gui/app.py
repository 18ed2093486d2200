"""Start the window on the qasync event loop: ``specchat`` or ``python -m gui``.

Something is on screen within a fraction of a second: a splash is shown before
the heavy imports (numpy, llama.cpp's bindings through ``core.engine``, pyqtgraph,
huggingface_hub), and the window follows as soon as they are in. No model is
loaded and no engine process started until the user (or the first-run offer)
asks for a pair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

if TYPE_CHECKING:
    from core.store import ConversationStore

logger = logging.getLogger(__name__)

APP_TITLE = "SpecChat"
# core.worker.protocol.HOST_ARGUMENT, spelled out: importing core.worker loads numpy and
# llama.cpp, which would delay the splash (tests/test_app_entry.py keeps the two equal).
ENGINE_ARGUMENT = "--specchat-engine-worker"


class StartupSplash(QLabel):
    """What is on screen while the window's modules load.

    Not a QSplashScreen: Qt 6's show() and finish() each wait up to a second for the
    window system to report the window exposed, a second that under Xvfb (or a
    compositor slow to map windows) was added to every start. This one is a plain
    frameless window: shown, painted by the next processEvents(), and closed once
    the main window is shown.
    """

    def __init__(self) -> None:
        super().__init__(
            None,
            Qt.WindowType.SplashScreen
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint,
        )
        self.setWindowTitle(f"{APP_TITLE} is starting")
        self.setPixmap(_splash_picture())
        self.resize(self.pixmap().size())
        screen = QApplication.primaryScreen()
        if screen is not None:
            self.move(screen.availableGeometry().center() - self.rect().center())


def _splash_picture() -> QPixmap:
    pixmap = QPixmap(420, 140)
    pixmap.fill(QColor("#1f2430"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#ffffff"))
    title = QFont()
    title.setPointSize(22)
    title.setBold(True)
    painter.setFont(title)
    painter.drawText(pixmap.rect().adjusted(0, 0, 0, -30), Qt.AlignmentFlag.AlignCenter, APP_TITLE)
    small = QFont()
    small.setPointSize(10)
    painter.setFont(small)
    painter.setPen(QColor("#009E73"))
    painter.drawText(
        pixmap.rect().adjusted(0, 60, 0, 0),
        Qt.AlignmentFlag.AlignCenter,
        "speculative decoding, made visible · starting…",
    )
    painter.end()
    return pixmap


async def run_window(store: ConversationStore, splash: StartupSplash | None = None) -> int:
    """Show the window, wait until it is closed, then stop everything it started."""
    from gui.main_window import MainWindow

    window = MainWindow(store=store)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    window.show()
    if splash is not None:
        splash.close()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        # Ctrl+C in the terminal or a logout closes the window the normal way, so the
        # answer being written is saved and the engine process stopped.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, window.close)
            handled.append(number)
    try:
        await closed.wait()
    finally:
        # The handlers close this window only; the process outlives it (tests, a
        # self-test run), and Ctrl+C must mean KeyboardInterrupt again afterwards.
        for number in handled:
            loop.remove_signal_handler(number)
        # Before the loop closes: a running answer is saved and the engine process
        # stopped, or qasync's close would wait on them (or lose the answer).
        await window.shutdown()
        store.close()
    return 0


def _become_engine_if_asked(argv: Sequence[str]) -> None:
    """A frozen bundle starts its engine process as itself plus one argument."""
    if len(argv) > 1 and argv[1] == ENGINE_ARGUMENT:
        from core.worker.host import run_if_requested

        run_if_requested(argv)


def _options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="specchat", description="SpecChat: local LLM chat with speculative decoding."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation without a window (demo pair, engine process, "
        "speculation) and exit 0 if it works",
    )
    # Qt's own options (-platform, -style ...) pass through to QApplication.
    options, _qt_arguments = parser.parse_known_args(list(argv[1:]))
    return options


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv if argv is None else argv)
    _become_engine_if_asked(arguments)
    from core.paths import log_dir
    from core.std_streams import ensure_std_streams

    # A windowed bundle (or a menu launch) may have no stdout/stderr at all.
    ensure_std_streams(log_dir)
    options = _options(arguments)
    if options.version:
        from core.app_info import version_text

        sys.stdout.write(version_text() + "\n")
        return 0
    if options.self_test:
        from gui import self_test

        return self_test.run()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(arguments)
    app.setApplicationName(APP_TITLE)
    app.setOrganizationName(APP_TITLE)
    app.setDesktopFileName("specchat")
    from gui.app_icon import app_icon

    app.setWindowIcon(app_icon())
    # The window's close ends run_window; Qt quitting the loop on its own would
    # stop qasync before shutdown() has run.
    app.setQuitOnLastWindowClosed(False)
    from gui.main_thread_gc import MainThreadGarbageCollector

    garbage_collector = MainThreadGarbageCollector(app)
    splash = StartupSplash()
    splash.show()
    app.processEvents()

    # The heavy imports, now that the user sees the app starting.
    import qasync

    from core.errors import AppFolderError
    from core.store import ConversationStore, StoreError
    from gui.theme import apply_theme

    try:
        # The theme reads the settings file: the first touch of SpecChat's folders.
        apply_theme(app)
        store = ConversationStore()
    except (StoreError, AppFolderError) as exc:
        # A dialog, not a traceback in a terminal a menu launch does not have.
        splash.close()
        garbage_collector.stop()
        QMessageBox.critical(None, "SpecChat cannot start", str(exc))
        return 1
    # Python 3.11: asyncio.run(loop_factory=...) needs 3.12, so qasync.run.
    result: int = qasync.run(run_window(store, splash))
    garbage_collector.stop()
    return result


if __name__ == "__main__":
    sys.exit(main())
