"""Workarounds for bugs in the PySide6 release we run on, each probed for before it is applied.

PySide6/shiboken6 6.12.0 on Python 3.11 return the singletons without taking a
reference to them: every void method called from Python (``setObjectName``,
``resize``, ``setData`` ...) drops one reference to ``None``, and every
``Signal.emit()`` one to ``True`` (found here, measured: exactly -1 per call).
From Python 3.12 on these objects are immortal, so the bindings' shortcut is
harmless there; on 3.11 their counts reach zero after some tens of thousands of
Qt calls and the interpreter aborts ("Fatal Python error: none_dealloc" /
"bool_dealloc"), i.e. the window dies a few minutes into streaming.

The cure is what Python 3.12 does: make the singletons effectively immortal, by
raising their reference counts by 2**40, more than any session can use up.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

logger = logging.getLogger(__name__)

_PROBE_CALLS = 16
_PIN = 1 << 40


class _Probe(QObject):
    fired = Signal()


def calls_drop_singleton_references() -> bool:
    """Whether this PySide6 loses references to None (void calls) or True (emit)."""
    probe = _Probe()
    none_before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    none_lost = sys.getrefcount(None) <= none_before - _PROBE_CALLS
    true_before = sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.fired.emit()
    true_lost = sys.getrefcount(True) <= true_before - _PROBE_CALLS
    return none_lost or true_lost


class _State:
    pinned = False


def pin_singleton_reference_counts() -> bool:
    """Make None, True and False effectively immortal when the bindings leak them.

    Returns whether the pin is in place (applied once per process; never on
    Python 3.12+, where they are immortal, nor on a PySide6 without the bug).
    """
    if _State.pinned:
        return True
    if sys.version_info >= (3, 12) or not calls_drop_singleton_references():
        return False
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every object in a release build of CPython.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _PIN
    _State.pinned = True
    logger.debug("PySide6 calls drop references to None/True; pinned their reference counts")
    return True


pin_singleton_reference_counts()
