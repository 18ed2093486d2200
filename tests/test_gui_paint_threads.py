"""Painting stays on the GUI thread: Qt's paint thread pool is never started.

Each case runs in a fresh interpreter: Qt reads its switch once per process, at
the pool's first use, so the test suite's own process says nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gui.paint_threads import SWITCH

REPO_ROOT = Path(__file__).resolve().parents[1]

# Paints a big widget (big fills are what Qt hands to its pool), then prints how
# many of the process's threads are Qt pool threads ("Thread (pooled)").
_PAINT_AND_COUNT = textwrap.dedent(
    """
    import os, sys
    if sys.argv[1] == "window":
        import gui  # noqa: F401  (what `specchat` imports first)
    from PySide6.QtWidgets import QApplication, QTextEdit
    app = QApplication([])
    view = QTextEdit()
    view.setPlainText("token " * 4000)
    view.resize(1400, 900)
    for _ in range(5):
        view.grab()
    pooled = [
        task for task in os.listdir("/proc/self/task")
        if open(f"/proc/self/task/{task}/comm").read().strip() == "Thread (pooled)"
    ]
    print(len(pooled))
    """
)


def _pool_threads_after_painting(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != SWITCH}
    env["QT_QPA_PLATFORM"] = "offscreen"
    result = subprocess.run(
        [sys.executable, "-c", _PAINT_AND_COUNT, mode],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc"
)


def test_plain_qt_paints_big_fills_on_pool_threads() -> None:
    # The probe can see the pool: without the window's switch, Qt starts it.
    assert _pool_threads_after_painting("plain") > 0


def test_the_window_paints_without_pool_threads() -> None:
    assert _pool_threads_after_painting("window") == 0
