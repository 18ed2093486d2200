"""Standard streams that always exist, for windowed frozen builds.

A windowed PyInstaller build on Windows (and an app started from a desktop menu on
some systems) starts with ``sys.stdout`` and ``sys.stderr`` set to ``None``; any
``print``, tqdm bar or logging handler made from them would then raise. The app
points them at a log file instead, so what would have been printed is kept.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

LOG_FILE_NAME = "specchat-output.log"


def _open_log(log_folder: Callable[[], Path] | None) -> TextIO:
    if log_folder is not None:
        with contextlib.suppress(OSError):
            folder = log_folder()
            folder.mkdir(parents=True, exist_ok=True)
            return (folder / LOG_FILE_NAME).open("a", encoding="utf-8", buffering=1)
    return open(os.devnull, "w", encoding="utf-8")  # kept open for the process


def ensure_std_streams(log_folder: Callable[[], Path] | None = None) -> bool:
    """Replace a missing ``sys.stdout``/``sys.stderr`` with one log file (or devnull).

    ``log_folder`` gives the folder of that file; it is asked only when a stream is
    missing. Returns True when a stream was missing and has been replaced.
    """
    if sys.stdout is not None and sys.stderr is not None:
        return False
    stream = _open_log(log_folder)
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return True
