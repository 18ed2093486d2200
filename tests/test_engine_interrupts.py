"""A Ctrl+C that lands inside a llama.cpp callback stops the native call and is raised
after it (core/engine/interrupts.py), with or without the command line's handler."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator

import pytest

from core.engine import ModelConfig
from core.engine.model import LoadedModel
from core.interrupts import (
    clear_interrupt,
    handle_sigint,
    interrupt_pending,
    native_callback,
    raise_pending_interrupt,
)
from tests.conftest import TinyModels


@pytest.fixture(autouse=True)
def _no_interrupt_left() -> Iterator[None]:
    clear_interrupt()
    yield
    clear_interrupt()


def test_a_callback_records_the_interrupt_and_returns_its_stop_value() -> None:
    @native_callback(False)
    def progress(_fraction: float) -> bool:
        raise KeyboardInterrupt

    assert progress(0.5) is False
    assert interrupt_pending()
    with pytest.raises(KeyboardInterrupt):
        raise_pending_interrupt()
    assert not interrupt_pending()
    raise_pending_interrupt()  # nothing pending: no exception


def test_the_handler_only_records_inside_a_callback_and_raises_outside() -> None:
    seen: list[bool] = []

    @native_callback(True)
    def abort() -> bool:
        handle_sigint(signal.SIGINT, sys._getframe())
        seen.append(interrupt_pending())
        return False

    assert abort() is False  # the handler did not raise in the callback
    assert seen == [True]
    clear_interrupt()
    with pytest.raises(KeyboardInterrupt):
        handle_sigint(signal.SIGINT, sys._getframe())


@pytest.mark.parametrize("cli_handler", [True, False])
def test_ctrl_c_during_a_load_stops_it_and_raises_after(
    tiny_models: TinyModels, cli_handler: bool
) -> None:
    assert threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT)
    # Without the command line's handler, Python's own: set it rather than trust
    # what an earlier test in the process left installed.
    signal.signal(signal.SIGINT, handle_sigint if cli_handler else signal.default_int_handler)
    calls: list[float] = []

    def press_ctrl_c(fraction: float) -> bool:
        calls.append(fraction)
        signal.raise_signal(signal.SIGINT)  # delivered here, inside llama.cpp's callback
        return True

    try:
        with pytest.raises(KeyboardInterrupt):
            LoadedModel(ModelConfig(tiny_models.target, n_threads=1), on_progress=press_ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls and calls[-1] < 1.0  # the load stopped early
    assert not interrupt_pending()
