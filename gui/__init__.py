"""SpecChat desktop window (PySide6). Renders core state and forwards user intents."""

# Before anything emits a signal: PySide6 6.12.0 leaks a reference to True per emit().
import gui.pyside_fixes  # noqa: F401
