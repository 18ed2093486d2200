"""What the window process loads before its window can show: none of the heavy
libraries it needs only later (llama.cpp's bindings live in the engine process;
pyqtgraph fills the graphs in after the first paint; uvicorn only serves on demand)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

DEFERRED = ("llama_cpp", "pyqtgraph", "uvicorn")


def _modules_after(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen"}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return set(completed.stdout.split())


def test_the_window_module_leaves_heavy_libraries_for_later() -> None:
    loaded = _modules_after("import gui.app, gui.main_window")
    assert "gui.main_window" in loaded
    assert not [name for name in DEFERRED if name in loaded]


def test_the_engine_is_still_importable_by_name() -> None:
    loaded = _modules_after("from core.engine import SpeculativeEngine")
    assert "llama_cpp" in loaded
