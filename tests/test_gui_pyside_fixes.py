"""PySide6 6.12.0's lost references to None and True no longer kill the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gui  # noqa: F401  (applies the workaround on import)
from gui.pyside_fixes import pin_singleton_reference_counts


def test_many_qt_calls_leave_the_singletons_alive() -> None:
    # In a fresh interpreter: each loop drops 200,000 references to None and to
    # True on an unpatched 6.12.0, far more than the few thousand they start with.
    script = textwrap.dedent(
        """
        import gui
        from PySide6.QtCore import QObject, Signal

        class Source(QObject):
            fired = Signal(int)

        source = Source()
        for i in range(200_000):
            source.fired.emit(i)
            source.setObjectName("source")
        print("alive", None, True, False)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "alive None True False" in result.stdout


def test_pin_is_applied_once() -> None:
    first = pin_singleton_reference_counts()
    assert pin_singleton_reference_counts() == first
