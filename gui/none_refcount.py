"""Keep CPython 3.11 alive despite PySide6 6.12 dropping references to None.

On Python 3.11, PySide6 6.12 returns ``None`` from many calls without taking a
reference (``QGraphicsItem.setPos``, ``QWidget.setParent(None)``,
``QObject.parent()`` when there is none: one reference lost per call, measured
here). Since Python 3.12 ``None`` is immortal (PEP 683) and nothing happens; on
3.11 its count falls by thousands per second while pyqtgraph redraws, and when it
reaches zero the interpreter aborts with "Fatal Python error: none_dealloc:
deallocating None". Giving ``None`` a huge surplus of references makes it as
good as immortal, which is what 3.12 does by design.
"""

from __future__ import annotations

import ctypes
import sys

# 2**40 lost references is about 35 years at a thousand per millisecond.
_SURPLUS = 1 << 40


def make_none_immortal() -> None:
    """Give None enough references that a leaking extension can never free it."""
    if sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return
    if sys.implementation.name != "cpython":
        return
    count = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt is PyObject's first field
    if count.value < _SURPLUS:
        count.value += _SURPLUS
