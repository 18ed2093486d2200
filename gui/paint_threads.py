"""Keep Qt's painting on the GUI thread, off the cores llama.cpp decodes on.

Qt's raster engine hands every fill of 96 or more scanlines (a panel's
background, a plot's frame, a scrolled viewport) to a thread pool of its own and
waits for it. While an answer streams, llama.cpp keeps every core busy with
threads that meet at a spinning barrier after each graph node, so each pool
task wakes a thread that takes a core from one of them, and the rest wait at the
barrier. Measured on 2 cores with the demo pair streaming in the window: the GUI
thread ran in 103 slices a second (0.58 ms each; most ended waiting for the pool)
and two pool threads woke about 50 times a second each; with the pool off, 19
slices a second of 2.9 ms and no pool threads. The window's CPU per token stayed
the same (at a live pace without the engine 0.91-1.00 ms with the pool off,
0.85-1.02 ms with it; tests/benchmarks/window_stream_bench.py): what goes is the
wake-ups, not work.

``QT_NO_GUI_THREADPOOL`` is Qt's own switch for this. Qt reads it once, when the
pool is first wanted, so it is set before anything paints; a value the user set
is kept.
"""

from __future__ import annotations

import os

SWITCH = "QT_NO_GUI_THREADPOOL"


def keep_painting_on_gui_thread() -> None:
    """Turn Qt's paint thread pool off for this process (before the first paint)."""
    os.environ.setdefault(SWITCH, "1")
