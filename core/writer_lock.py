"""One writer per file being built: an OS lock on a small file next to the partial data.

The lock is advisory and held through an open file (``flock`` on POSIX, a byte-range
lock on Windows), so the OS drops it when the holder exits or crashes: a killed
download or demo-model build never leaves a stale lock that blocks the next run.
Locks taken through separate ``open`` calls conflict inside one process too, so two
download managers in one app are kept apart as well as two processes.

It lives outside ``core.hub`` because the demo pair's writer takes it too, and must
not need the Hub client (and its HTTP packages) to do so: the GPU checks run that
writer on a machine without them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path

# Windows locks are mandatory: lock a byte far past the holder's pid, so a
# second caller can still read which process holds the file.
_WINDOWS_LOCK_OFFSET = 1 << 20
_POLL_S = 0.05


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


class WriterLock:
    """An exclusive lock on ``path``; the holder's pid is written into it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_s: float, cancel: threading.Event) -> bool:
        """Take the lock, waiting up to ``wait_s`` while another holder has it.

        Returns False when it is still held by someone else after ``wait_s`` or
        when ``cancel`` is set while waiting.
        """
        deadline = time.monotonic() + wait_s
        while True:
            if self._try_acquire():
                return True
            if time.monotonic() >= deadline or cancel.wait(_POLL_S):
                return False

    def _try_acquire(self) -> bool:
        # Another download of a different file may remove the shared folder when it
        # finishes, between our mkdir and open: make it again and retry.
        for _ in range(3):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue
            break
        else:
            return False
        if not _try_lock(fd):
            os.close(fd)
            return False
        # The previous holder unlinks the file before unlocking; if we locked that
        # unlinked file, the lock guards nothing: start again on the new file.
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same_file = False
        if not same_file:
            _unlock(fd)
            os.close(fd)
            return self._try_acquire()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid written by the current holder, when readable."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if sys.platform != "win32":
            # Unlink while still locked (see _try_acquire); Windows cannot delete an
            # open file, so there the lock file stays, empty of meaning once unlocked.
            with contextlib.suppress(OSError):
                self.path.unlink()
        try:
            _unlock(fd)
        finally:
            os.close(fd)
