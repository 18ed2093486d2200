"""Sizes, counts and durations as people read them, for every message and table.

One place, so the window, the command line and the error messages write "1.5 GiB"
and "3:05" the same way.
"""

from __future__ import annotations

GIB = 1 << 30


def format_bytes(n_bytes: float) -> str:
    """Bytes in the unit a person reads best; small numbers never show as "0.00 GiB"."""
    for unit in ("B", "KiB", "MiB"):
        if abs(n_bytes) < 1024:
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def format_gib(n_bytes: int) -> str:
    """Memory, always in GiB with two decimals, so RAM and VRAM figures line up."""
    return f"{n_bytes / GIB:.2f} GiB"


def format_count(count: int) -> str:
    """Parameters or downloads: "135.0M", "1.2k"."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        # Just below a unit the smaller one would print "1000.0k" for 999,999: from
        # where it rounds so, the larger one says "1.0M".
        if count >= scale * 0.99995:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def format_duration(seconds: float | None) -> str:
    """A clock-style time left: "3:05", "1:02:03"; "--:--" when unknown."""
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_wait(seconds: float) -> str:
    """A wait a person reads at a glance: "45 s", "3 min", "2 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"
