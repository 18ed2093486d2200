"""Ctrl+C while llama.cpp runs: never swallowed, never a traceback.

Python runs a SIGINT handler in the main thread at the next bytecode it executes.
During a long native call (loading weights, processing a prompt) that bytecode is
inside one of our ctypes callbacks (log, load progress, abort), and ctypes prints
and swallows any exception raised there ("Exception ignored on calling ctypes
callback"): the ``KeyboardInterrupt`` is lost and the load runs to its end.

So an interrupt is first *recorded* here. Callbacks wrapped with
``native_callback`` never raise: they record a ``KeyboardInterrupt`` that reaches
them, and the progress and abort callbacks read ``interrupt_pending()`` to tell
llama.cpp to stop. The code that made the native call re-raises with
``raise_pending_interrupt()`` once it returned. ``handle_sigint`` (installed by the
command line) records the interrupt and raises it only outside callbacks, so not
even the first bytecode of a callback can lose it.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

_pending = threading.Event()
# Code objects of the callbacks llama.cpp calls; a signal landing in one is only recorded.
_callback_codes: set[CodeType] = set()


def note_interrupt() -> None:
    """Record a Ctrl+C that cannot be raised where it arrived."""
    _pending.set()


def interrupt_pending() -> bool:
    return _pending.is_set()


def clear_interrupt() -> None:
    _pending.clear()


def raise_pending_interrupt() -> None:
    """Raise the ``KeyboardInterrupt`` a callback recorded during the last native call."""
    if _pending.is_set():
        _pending.clear()
        raise KeyboardInterrupt


def native_callback(
    stop_value: _R,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Make a function safe to hand to llama.cpp as a ctypes callback.

    A ``KeyboardInterrupt`` raised in it is recorded and ``stop_value`` returned (the
    value that tells llama.cpp to stop: False for load progress, True for abort).
    Other exceptions are the wrapped function's to handle.
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except KeyboardInterrupt:
                _pending.set()
                return stop_value

        # Frames of the wrapped function sit below this one, so one code object suffices.
        _callback_codes.add(guarded.__code__)
        return functools.wraps(function)(guarded)

    return decorate


def _inside_native_callback(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code in _callback_codes:
            return True
        frame = frame.f_back
    return False


def handle_sigint(_signum: int, frame: FrameType | None) -> None:
    """SIGINT handler: record the interrupt; raise it unless a callback is running."""
    _pending.set()
    if _inside_native_callback(frame):
        return
    _pending.clear()
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_calls(action: Callable[[], None]) -> Iterator[None]:
    """While the block runs, Ctrl+C calls ``action`` (e.g. cancel an answer) instead of
    raising; a second Ctrl+C raises (or is recorded, inside a callback) as usual.

    Only the main thread can set signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed = False

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal pressed
        if pressed:
            handle_sigint(signum, frame)
            return
        pressed = True
        action()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
