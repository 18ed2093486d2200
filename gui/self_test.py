"""``specchat --self-test``: the window's parts off screen, then the engine end to end.

The Qt half proves a bundle carries what the window needs (platform plugin, icon,
style sheet, pyqtgraph, the About dialog's metadata); the engine half is
``core.self_test``. Nothing is shown on screen and no user data is written.
"""

from __future__ import annotations

import os
import sys

from core.self_test import run_self_test


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check_window_parts() -> None:
    """Build the window's heavier parts off screen; raises RuntimeError on a failure."""
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(["specchat"])
    from gui.about_dialog import AboutDialog
    from gui.app_icon import app_icon
    from gui.panels.speculation_panel import SpeculationPanel
    from gui.theme import LIGHT, style_sheet

    if app_icon().isNull():
        raise RuntimeError("the application icon is missing from resources/icons")
    app.setStyleSheet(style_sheet(LIGHT))
    panel = SpeculationPanel()
    dialog = AboutDialog()
    # grab() lays out and paints into a pixmap without mapping a window: the offscreen
    # platform would warn about top-level size hints on show().
    for widget in (panel, dialog):
        if widget.grab().isNull():
            raise RuntimeError(f"{type(widget).__name__} did not paint")
    if "Bundled components" not in dialog.text.toPlainText():
        raise RuntimeError("the About dialog did not render")
    panel.deleteLater()
    dialog.deleteLater()
    app.processEvents()
    _write(f"window parts: OK (Qt platform {app.platformName()})")


def run() -> int:
    """The whole self-test; returns the process's exit status."""
    # Headless by definition, also when started from a desktop session.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        check_window_parts()
    except (RuntimeError, ImportError, OSError) as exc:
        _write(f"SELF-TEST FAILED: {exc}")
        return 1
    return run_self_test(_write)
