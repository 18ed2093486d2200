"""Whether a stream is a terminal: progress is redrawn in place with carriage returns
there, and written as a few whole lines to a log file or a pipe, which would otherwise
collect every redraw."""

from __future__ import annotations

from typing import TextIO


def is_terminal(stream: TextIO | None) -> bool:
    if stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
