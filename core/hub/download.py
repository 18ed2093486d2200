"""Downloading one file from the Hub: resumable, verified, cancellable.

huggingface_hub deletes a partial file when a download is interrupted, so it
cannot resume after a cancel or a restart. This module does the transfer itself:
bytes go to ``<destination>/.partial/<file>.part`` (with a small JSON note of what
they belong to), a later run continues with an HTTP ``Range`` request, and only
a file whose SHA-256 matches the Hub's LFS metadata is moved to its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session, hf_raise_for_status

from core.gguf_meta import file_sha256
from core.hub.client import HubClient
from core.hub.errors import (
    ChecksumMismatchError,
    DownloadCancelled,
    HubError,
    HubFileNotFoundError,
    InsufficientDiskSpaceError,
    NetworkError,
    translate_hub_error,
)
from core.library.memory import format_gib
from core.paths import models_dir

logger = logging.getLogger(__name__)

PARTIAL_DIR_NAME = ".partial"
PARTIAL_SUFFIX = ".part"
NOTE_SUFFIX = ".part.json"
# Free space kept on top of the file, so a download never fills a disk to the last byte.
DISK_SPACE_MARGIN_BYTES = 64 << 20
SPEED_WINDOW_S = 5.0


class DownloadState(Enum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (DownloadState.DONE, DownloadState.FAILED, DownloadState.CANCELLED)


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands; ``bytes_done`` counts resumed bytes too.

    During VERIFYING, ``bytes_done`` counts bytes hashed so far.
    """

    state: DownloadState
    bytes_done: int = 0
    total_bytes: int | None = None
    bytes_per_second: float = 0.0
    eta_seconds: float | None = None
    resumed_from: int = 0
    bytes_transferred: int = 0

    @property
    def fraction(self) -> float | None:
        return self.bytes_done / self.total_bytes if self.total_bytes else None


@dataclass(frozen=True)
class DownloadRequest:
    """Which file to fetch and where it ends up."""

    repo_id: str
    filename: str
    destination_dir: Path
    revision: str | None = None

    @property
    def final_path(self) -> Path:
        return self.destination_dir / self.filename

    @property
    def partial_path(self) -> Path:
        flat_name = self.filename.replace("/", "__")
        return self.destination_dir / PARTIAL_DIR_NAME / (flat_name + PARTIAL_SUFFIX)

    @property
    def note_path(self) -> Path:
        return self.partial_path.with_name(
            self.partial_path.name[: -len(PARTIAL_SUFFIX)] + NOTE_SUFFIX
        )


def default_destination(repo_id: str) -> Path:
    """Where downloads go unless the user picks a folder: the app's models folder."""
    return models_dir() / repo_id


def free_disk_bytes(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


@dataclass(frozen=True)
class TransferSettings:
    """Knobs of a transfer; tests shorten the delays and fake the disk."""

    max_attempts: int = 4
    retry_delay_s: float = 1.0
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 30.0
    progress_interval_s: float = 0.1
    free_disk_bytes: Callable[[Path], int] = field(default=free_disk_bytes)


@dataclass(frozen=True)
class RemoteFile:
    """What the Hub says the file is."""

    size: int
    sha256: str | None
    git_blob_id: str | None
    commit: str | None

    @property
    def identity(self) -> str:
        return self.sha256 or self.git_blob_id or f"size:{self.size}"


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file (what the Hub reports for files not stored in LFS)."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as stream:
        while chunk := stream.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _SpeedMeter:
    """Bytes per second over the last few seconds, so a stall shows up quickly."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total_transferred: int) -> float:
        self._samples.append((now, total_transferred))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()
        first_time, first_bytes = self._samples[0]
        elapsed = now - first_time
        return (total_transferred - first_bytes) / elapsed if elapsed > 0 else 0.0


class FileDownloader:
    """Downloads one file, reporting progress; cancelled by setting ``cancel_event``.

    Call ``run`` on a worker thread; ``cancel_event`` may be set from any thread.
    """

    def __init__(
        self,
        client: HubClient,
        request: DownloadRequest,
        cancel_event: threading.Event | None = None,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        settings: TransferSettings | None = None,
    ) -> None:
        self._client = client
        self._request = request
        self._cancel = cancel_event or threading.Event()
        self._on_progress = on_progress
        self._settings = settings or TransferSettings()
        self._speed = _SpeedMeter()
        self._last_emit = 0.0
        self._resumed_from = 0
        self._transferred = 0

    def run(self) -> Path:
        """Fetch, verify and move the file into place; returns its final path.

        Raises:
            DownloadCancelled: the cancel event was set; partial data is kept.
            ChecksumMismatchError: the data was corrupt; it was deleted.
            InsufficientDiskSpaceError: refused before any byte was fetched.
            HubError: gated, not found, network and rate-limit problems.
        """
        request = self._request
        remote = self._remote_file()
        if self._already_complete(remote):
            logger.info("%s is already downloaded and verified", request.final_path)
            self._emit(DownloadState.DONE, remote.size, remote.size, force=True)
            return request.final_path
        partial_size = self._prepare_partial(remote)
        self._check_disk_space(remote.size - partial_size)
        self._resumed_from = partial_size
        self._transfer_with_retries(remote)
        self._verify(remote)
        request.final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(request.partial_path, request.final_path)
        self._remove_partial_note()
        self._emit(DownloadState.DONE, remote.size, remote.size, force=True)
        logger.info("downloaded %s/%s to %s", request.repo_id, request.filename, request.final_path)
        return request.final_path

    # -- what to fetch ---------------------------------------------------------------

    def _remote_file(self) -> RemoteFile:
        request = self._request
        info = self._client.model_info(request.repo_id, revision=request.revision)
        for sibling in info.siblings or []:
            if sibling.rfilename == request.filename:
                size = sibling.lfs.size if sibling.lfs else sibling.size
                if size is None:
                    raise HubError(f"the Hub did not report the size of {request.filename}")
                return RemoteFile(
                    size=size,
                    sha256=sibling.lfs.sha256 if sibling.lfs else None,
                    git_blob_id=sibling.blob_id,
                    commit=info.sha,
                )
        raise HubFileNotFoundError(f"{request.repo_id} has no file {request.filename}")

    def _already_complete(self, remote: RemoteFile) -> bool:
        final = self._request.final_path
        if not final.is_file() or final.stat().st_size != remote.size:
            return False
        return self._checksum_matches(final, remote)

    def _prepare_partial(self, remote: RemoteFile) -> int:
        """Keep partial data only if it belongs to the same remote file; its size."""
        partial = self._request.partial_path
        note = self._read_note()
        if partial.exists():
            same_file = note.get("identity") == remote.identity
            if not same_file or partial.stat().st_size > remote.size:
                logger.info("discarding partial data of a different version: %s", partial)
                partial.unlink()
        partial.parent.mkdir(parents=True, exist_ok=True)
        note_data = {
            "repo_id": self._request.repo_id,
            "filename": self._request.filename,
            "identity": remote.identity,
            "size": remote.size,
        }
        self._request.note_path.write_text(json.dumps(note_data))
        return partial.stat().st_size if partial.exists() else 0

    def _read_note(self) -> dict[str, Any]:
        try:
            data = json.loads(self._request.note_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _check_disk_space(self, remaining: int) -> None:
        free = self._settings.free_disk_bytes(self._request.destination_dir)
        if free < remaining + DISK_SPACE_MARGIN_BYTES:
            raise InsufficientDiskSpaceError(
                f"not enough disk space for {self._request.filename}: it needs "
                f"{format_gib(remaining)} more, {format_gib(free)} is free on the disk "
                f"of {self._request.destination_dir}"
            )

    # -- the transfer ----------------------------------------------------------------

    def _transfer_with_retries(self, remote: RemoteFile) -> None:
        failures = 0
        while True:
            self._check_cancelled()
            before = self._partial_size()
            try:
                self._transfer(remote)
            except NetworkError as exc:
                # A failure after progress starts the count afresh: only stalls give up.
                failures = 1 if self._partial_size() > before else failures + 1
                if failures >= self._settings.max_attempts:
                    raise NetworkError(
                        f"{exc}; the partial download is kept, run the download again to resume"
                    ) from exc
                delay = self._settings.retry_delay_s * 2 ** (failures - 1)
                logger.warning("download interrupted (%s); resuming in %.1f s", exc, delay)
                if self._cancel.wait(delay):
                    raise DownloadCancelled("download cancelled; partial data kept") from exc
                continue
            if self._partial_size() == remote.size:
                return
            if self._partial_size() > remote.size:
                self._discard_partial()
                raise ChecksumMismatchError(
                    f"the Hub sent more data than {self._request.filename} holds; "
                    "the data was discarded, run the download again"
                )
            failures += 1
            if failures >= self._settings.max_attempts:
                raise NetworkError("the Hub kept ending the transfer early; partial data kept")

    def _partial_size(self) -> int:
        partial = self._request.partial_path
        return partial.stat().st_size if partial.exists() else 0

    def _transfer(self, remote: RemoteFile) -> None:
        request = self._request
        offset = self._partial_size()
        if offset == remote.size:
            return
        url = self._client.file_url(
            request.repo_id, request.filename, revision=remote.commit or request.revision
        )
        headers = self._client.headers()
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = httpx2.Timeout(
            self._settings.read_timeout_s, connect=self._settings.connect_timeout_s
        )
        endpoint = self._client.endpoint
        try:
            with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    hf_raise_for_status(response)
                mode = "ab"
                if offset and response.status_code != 206:
                    logger.info("the server ignored the Range request; starting over")
                    mode, offset = "wb", 0
                elif offset and not self._range_starts_at(response, offset):
                    raise NetworkError("the server resumed at the wrong position")
                self._emit(DownloadState.DOWNLOADING, offset, remote.size, force=True)
                with request.partial_path.open(mode) as sink:
                    for chunk in response.iter_bytes():
                        # Write before checking: every byte received is kept for the resume.
                        sink.write(chunk)
                        offset += len(chunk)
                        self._transferred += len(chunk)
                        self._emit(DownloadState.DOWNLOADING, offset, remote.size)
                        if self._cancel.is_set():
                            raise DownloadCancelled("download cancelled; partial data kept")
        except (httpx2.HTTPError, HfHubHTTPError) as exc:
            raise translate_hub_error(exc, endpoint, request.repo_id, request.filename) from exc

    @staticmethod
    def _range_starts_at(response: httpx2.Response, offset: int) -> bool:
        content_range = response.headers.get("Content-Range", "")
        return content_range.startswith(f"bytes {offset}-")

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled("download cancelled; partial data kept")

    # -- verification ----------------------------------------------------------------

    def _verify(self, remote: RemoteFile) -> None:
        partial = self._request.partial_path
        self._emit(DownloadState.VERIFYING, 0, remote.size, force=True)
        if not self._checksum_matches(partial, remote):
            self._discard_partial()
            raise ChecksumMismatchError(
                f"{self._request.filename} does not match the Hub's checksum (corrupted in "
                "transfer); the data was discarded, run the download again"
            )

    def _checksum_matches(self, path: Path, remote: RemoteFile) -> bool:
        if remote.sha256:

            def hashed(done: int) -> None:
                self._check_cancelled()
                self._emit(DownloadState.VERIFYING, done, remote.size)

            return file_sha256(path, progress=hashed) == remote.sha256
        if remote.git_blob_id:
            return git_blob_sha1(path) == remote.git_blob_id
        logger.warning("the Hub gave no checksum for %s; only its size was checked", path.name)
        return path.stat().st_size == remote.size

    def _discard_partial(self) -> None:
        self._request.partial_path.unlink(missing_ok=True)
        self._remove_partial_note()

    def _remove_partial_note(self) -> None:
        self._request.note_path.unlink(missing_ok=True)
        # rmdir fails while other partial downloads still live there, as it should.
        with contextlib.suppress(OSError):
            self._request.partial_path.parent.rmdir()

    # -- progress --------------------------------------------------------------------

    def _emit(self, state: DownloadState, done: int, total: int, force: bool = False) -> None:
        if self._on_progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_emit < self._settings.progress_interval_s:
            return
        self._last_emit = now
        speed = self._speed.add(now, self._transferred) if state is DownloadState.DOWNLOADING else 0
        eta = (total - done) / speed if speed > 0 and state is DownloadState.DOWNLOADING else None
        self._on_progress(
            DownloadProgress(
                state=state,
                bytes_done=done,
                total_bytes=total,
                bytes_per_second=speed,
                eta_seconds=eta,
                resumed_from=self._resumed_from,
                bytes_transferred=self._transferred,
            )
        )
