"""SpecChat desktop window (PySide6). Renders core state and forwards user intents."""

# Before anything emits a signal: PySide6 6.12.0 leaks a reference to True per emit().
import gui.pyside_fixes  # noqa: F401
from gui.paint_threads import keep_painting_on_gui_thread

# Before anything paints: Qt's paint thread pool competes with llama.cpp for cores.
keep_painting_on_gui_thread()
