"""A benchmark's own SPECCHAT_HOME, removed when the run ends, killed or not.

Benchmarks build the demo pair (and the tune bench its weak draft) in their home:
hundreds of megabytes a run. A plain SIGTERM (``kill``, ``timeout``) ends Python
without its clean-up, and the homes of stopped runs once filled the disk until a
quantisation failed with "basic_ios::clear: iostream error".
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from types import FrameType


def temporary_home(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """Create the home, point SPECCHAT_HOME at it, and make SIGTERM a normal exit
    (status 143, as the shell reports a SIGTERM), so that ``finally`` blocks run
    (engines and worker processes stop) and the directory is removed at exit."""
    home = tempfile.TemporaryDirectory(prefix=prefix)
    os.environ["SPECCHAT_HOME"] = home.name
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return home


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)
