"""Helpers for the end-to-end window tests: a qasync loop, windows on temporary files,
and checks that tokens carry the right formats.

pytest-qt does not drive qasync, so the tests run the window's coroutines with
the qasync loop's ``run_until_complete``; that spins Qt's event loop too, so the
flush timer, signals and painting all happen as they do in the app.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication

from core.engine.config import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
)
from core.settings import LoadRequest, SettingsStore
from core.store import ConversationStore
from gui.chat.answer_controller import OverflowChoice
from gui.chat.message_widgets import AnswerWidget
from gui.chat.token_formats import token_formats
from gui.main_window import MainWindow
from gui.theme import is_dark

T = TypeVar("T")

GREEDY = GenerationSettings(
    n_predict=40,
    sampling=SamplingSettings(temperature=0.0, seed=7),
    # Fixed length: the adaptive guard reacts to the machine's load, and these tests
    # need drafts to be verified on every step.
    drafting=DraftSettings(n_max=4, adaptive=False),
)


# The offscreen platform plugin warns whenever a top-level window's minimum size is
# set (QMainWindow's layout does it); on a real display the call does its job.
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(name="qloop")
def qloop_fixture(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    # As in the app (gui/app.py): closing the window must not stop the loop that is
    # about to run its shutdown.
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    yield loop
    # A test that failed half-way leaves its windows running: stop their engine
    # processes and tasks while the loop still runs, or they outlive the test.
    while _open_windows:
        window = _open_windows.pop()
        window.close()
        loop.run_until_complete(asyncio.wait_for(window.shutdown(), 30))
        window.store.close()
    loop.run_until_complete(asyncio.sleep(0))
    asyncio.set_event_loop(None)
    loop.close()


_open_windows: list[MainWindow] = []


def run(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T], timeout: float = 60
) -> T:
    return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))


async def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


class WindowFiles:
    """Where one test's windows keep their database, settings and window state."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "conversations.sqlite3"
        self.settings = folder / "settings.json"
        self.state = folder / "window.ini"
        folder.mkdir(parents=True, exist_ok=True)


@pytest.fixture(name="window_files")
def window_files_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WindowFiles:
    # The model panel scans the Hugging Face cache: never the user's real one.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return WindowFiles(tmp_path / "window")


async def _refuse_overflow(*_args: object) -> OverflowChoice:
    raise AssertionError("the context overflow question was not expected")


def open_window(
    qtbot: Any,
    files: WindowFiles,
    settings: GenerationSettings | None = GREEDY,
    ask_overflow: Callable[..., Coroutine[Any, Any, OverflowChoice]] = _refuse_overflow,
) -> MainWindow:
    """A shown window on ``files``; ``settings`` replace the panel's knobs for answers."""
    window = MainWindow(
        store=ConversationStore(files.database),
        settings=SettingsStore(files.settings),
        ask_overflow=ask_overflow,
        state_path=files.state,
    )
    qtbot.addWidget(window)
    _open_windows.append(window)
    if settings is not None:
        window.controller._settings = lambda: settings
    window.show()
    qtbot.waitExposed(window)
    return window


def count_flushes(window: MainWindow) -> list[int]:
    """From now on, the number of steps in each of the window's store commits (the
    answer controller commits once per flush of the view)."""
    flushes: list[int] = []
    append_steps = window.store.append_steps

    def counting_append(message_id: int, steps: list[Any]) -> None:
        flushes.append(len(steps))
        append_steps(message_id, steps)

    window.store.append_steps = counting_append  # type: ignore[method-assign]
    return flushes


def close_window(loop: asyncio.AbstractEventLoop, window: MainWindow) -> None:
    """Close as the app does: closeEvent saves state, then shutdown stops the engine."""
    window.close()
    run(loop, window.shutdown())
    window.store.close()
    _open_windows.remove(window)


def tiny_request(target: Path, draft: Path | None) -> LoadRequest:
    return LoadRequest(
        ModelConfig(target, n_ctx=1024, n_threads=2),
        ModelConfig(draft, n_threads=2) if draft is not None else None,
        DraftSource.MODEL if draft is not None else DraftSource.NONE,
    )


def long_answer_window(
    qtbot: Any,
    qloop: asyncio.AbstractEventLoop,
    files: WindowFiles,
    target: Path,
    draft: Path,
    n_predict: int = 6000,
) -> MainWindow:
    """A shown window with the tiny pair loaded at an 8192-token context, answering
    greedily up to ``n_predict`` tokens: an answer streams long enough (about 30 s
    here) to be stopped, killed or left running mid-way."""
    window = open_window(qtbot, files, settings=GREEDY.with_changes(n_predict=n_predict))
    short = tiny_request(target, draft)
    request = LoadRequest(ModelConfig(target, n_ctx=8192, n_threads=2), short.draft)
    assert run(qloop, window.bridge.load(request)) is not None
    return window


def format_errors(answer: AnswerWidget) -> list[str]:
    """Every token whose characters in the token view lack its provenance's format."""
    formats = token_formats(is_dark())
    document = answer.token_view.document()
    errors: list[str] = []
    for start, end, entry in zip(
        answer._spans.starts, answer._spans.ends, answer._spans.entries, strict=True
    ):
        provenance = getattr(entry, "provenance", None)
        if provenance is None:
            continue
        expected = formats.token_format(provenance)
        for position in range(start, end):
            if document.characterAt(position) in ("\u2029", "\n"):
                continue  # a block separator carries the block's format, not the run's
            cursor = QTextCursor(document)
            cursor.setPosition(position + 1)  # charFormat() is the character before
            actual = cursor.charFormat()
            if (
                actual.background() != expected.background()
                or actual.underlineStyle() != expected.underlineStyle()
                or actual.fontWeight() != expected.fontWeight()
            ):
                errors.append(f"{entry!r} at {position}")
            break
    return errors


def demo_models_folder() -> Path | None:
    folder = os.environ.get("SPECCHAT_TEST_MODELS")
    return Path(folder) if folder else None
