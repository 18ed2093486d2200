"""How much room a disk has, and whether a write failed because it ran out.

Downloads and the demo pair's writer check before they write, so a full disk is
reported with the numbers instead of llama.cpp's "basic_ios::clear: iostream error"
or a half-written file.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from core.paths import nearest_existing

# Errnos of a full disk or an exhausted quota.
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def free_disk_bytes(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or its nearest existing parent)."""
    return shutil.disk_usage(nearest_existing(path)).free


def is_disk_full(error: OSError) -> bool:
    return error.errno in _DISK_FULL_ERRNOS
