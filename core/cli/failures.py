"""How ``specchat-cli`` ends when something goes wrong: one sentence, an exit code.

No traceback reaches a user: a failure is one line on stderr naming the thing at
fault (``--debug`` or ``SPECCHAT_DEBUG=1`` adds the traceback for bug reports).
With ``--json`` the failure is a JSON object on stdout instead, so a script can
parse every outcome: ``{"error": {"type": ..., "message": ...}}``.

Exit codes: 0 done, 1 failed, 2 bad command line, 130 interrupted (Ctrl+C),
141 the reader of stdout went away (e.g. ``| head``), as if killed by SIGPIPE.
Stdout that cannot be written (a full disk, a lost terminal) is told on stderr,
even with ``--json``: ``error: cannot write the output: No space left on device``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TextIO

from core.errors import ConfigError, SpecChatError
from core.interrupts import clear_interrupt, handle_sigint
from core.paths import explain_write_failure

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
DEBUG_FLAG = "--debug"
DEBUG_ENV = "SPECCHAT_DEBUG"
JSON_FLAG = "--json"
LOG_LEVEL_ENV = "SPECCHAT_LOG_LEVEL"


class UsageError(ConfigError):
    """The command line itself is wrong (unknown flag, bad value, conflicting flags).

    A ConfigError too, so code that catches bad settings catches bad flags as well.
    """


@contextlib.contextmanager
def flag_values() -> Iterator[None]:
    """Around code that turns flags into settings: a ConfigError there is a bad value
    on the command line, so it becomes a UsageError (exit code 2)."""
    try:
        yield
    except UsageError:
        raise
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def error_json(error_type: str, message: str) -> str:
    """The ``--json`` shape of a failure."""
    return json.dumps({"error": {"type": error_type, "message": message}}, ensure_ascii=False)


def describe(exc: BaseException) -> str:
    """One sentence for a failure the core did not phrase itself."""
    if isinstance(exc, SpecChatError):
        return str(exc)
    if isinstance(exc, UnicodeError):
        return f"text that is not valid UTF-8: {exc}"
    if isinstance(exc, OSError):
        in_our_folders = explain_write_failure(exc)
        if in_our_folders:
            return in_our_folders
        place = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{place}"
    if isinstance(exc, MemoryError):
        return "out of memory; try smaller models or a smaller context (-c)"
    return (
        f"unexpected {type(exc).__name__}: {exc}. This is a bug; run again with "
        f"{DEBUG_FLAG} and report the traceback"
    )


class OutputError(OSError):
    """Standard output cannot be written (ENOSPC, EIO...). Not a BrokenPipeError: the
    reader leaving is not a failure to report."""


class _CheckedOutput:
    """``sys.stdout`` whose write failures are told apart from other OSErrors (a model
    file that cannot be read fails with the same errno names)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def _failed(self, exc: OSError) -> OutputError:
        return OutputError(exc.errno, exc.strerror or str(exc))

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from exc

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._failed(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def _output_checked() -> Iterator[None]:
    """Within: a failed write to stdout raises OutputError; on the way out what is still
    buffered is flushed, so a failure shows here instead of silently at exit."""
    original = sys.stdout
    if original is None:
        yield
        return
    checked = _CheckedOutput(original)
    sys.stdout = checked
    try:
        yield
        checked.flush()
    finally:
        if sys.stdout is checked:
            sys.stdout = original


def _silence_stdout() -> None:
    """After a broken pipe or a failed write, point stdout at /dev/null so the exit
    flush is quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@contextlib.contextmanager
def _usage_errors_raise() -> Iterator[None]:
    """argparse errors become UsageError (for ``--json``) in every subcommand's parser."""
    original = argparse.ArgumentParser.error

    def error(self: argparse.ArgumentParser, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _interrupts_recorded() -> Iterator[None]:
    """Ctrl+C raises KeyboardInterrupt, but is only recorded inside llama.cpp callbacks."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_interrupt()
    previous = signal.signal(signal.SIGINT, handle_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        clear_interrupt()


def _report(
    exc: BaseException, error_type: str, message: str, json_mode: bool, debug: bool
) -> None:
    with contextlib.suppress(OSError, ValueError):
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        if json_mode:
            sys.stdout.write(error_json(error_type, message) + "\n")
            sys.stdout.flush()
        else:
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()


def debug_requested(args: list[str]) -> bool:
    """Whether ``--debug`` or ``SPECCHAT_DEBUG`` asks for tracebacks and logger names."""
    return DEBUG_FLAG in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


class _PlainFormatter(logging.Formatter):
    """``warning: message``, as the CLI's errors read ``error: message``; with
    ``--debug`` the logger's name follows the level (``warning core.engine.model: ...``)."""

    def __init__(self, debug: bool) -> None:
        super().__init__("%(message)s")
        self._debug = debug

    def format(self, record: logging.LogRecord) -> str:
        where = f" {record.name}" if self._debug else ""
        return f"{record.levelname.lower()}{where}: {super().format(record)}"


def configure_logging(debug: bool) -> None:
    """Log records on stderr, read like the CLI's own lines; the level comes from
    ``SPECCHAT_LOG_LEVEL`` (default WARNING)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_PlainFormatter(debug))
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "WARNING").upper(), handlers=[handler])


def run_reporting_failures(function: Callable[[list[str]], int], args: list[str]) -> int:
    """Run ``function(args)`` (without ``--debug``) and turn any failure into an exit code."""
    debug = debug_requested(args)
    args = [arg for arg in args if arg != DEBUG_FLAG]
    json_mode = JSON_FLAG in args
    usage = _usage_errors_raise() if json_mode else contextlib.nullcontext()
    exc: BaseException
    try:
        with usage, _interrupts_recorded(), _output_checked():
            return function(args)
    except KeyboardInterrupt as interrupt:
        exc = interrupt
        code, error_type, message = EXIT_INTERRUPTED, "Interrupted", "interrupted (Ctrl+C)"
        if not json_mode and not debug:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("\ninterrupted\n")
            return code
    except BrokenPipeError:
        # Whoever read our output stopped reading: nothing to tell them.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OutputError as output_error:
        # Nowhere to put a JSON object: stdout is what failed.
        message = f"cannot write the output: {output_error.strerror}"
        _report(output_error, "OutputError", message, False, debug)
        _silence_stdout()
        return EXIT_FAILURE
    except UsageError as usage_error:
        exc = usage_error
        code, error_type, message = EXIT_USAGE, "UsageError", str(usage_error)
    except Exception as failure:
        exc = failure
        code, error_type, message = EXIT_FAILURE, type(failure).__name__, describe(failure)
    try:
        _report(exc, error_type, message, json_mode, debug)
    except BrokenPipeError:
        _silence_stdout()
    return code
