"""SpecChat desktop window (PySide6). Renders core state and forwards user intents."""
