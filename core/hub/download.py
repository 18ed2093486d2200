"""Downloading one file from the Hub: resumable, verified, cancellable, one writer per file.

huggingface_hub deletes a partial file when a download is interrupted, so it
cannot resume after a cancel or a restart. This module does the transfer itself:
bytes go to ``<destination>/.partial/<file>.part`` (with a small JSON note of what
they belong to), a later run continues with an HTTP ``Range`` request, and only
a file whose SHA-256 matches the Hub's LFS metadata is moved to its final name.

What a bad network and a full disk do, and what happens then:

- Only one download writes a given file: an OS lock on ``<file>.lock`` next to the
  partial data (``core.writer_lock``); a second caller waits or is told plainly.
- Dropped connections and 5xx answers are retried with a backoff, 429 and 503 after
  the server's ``Retry-After`` (bounded); every run has a cap on reconnects and on
  the time spent waiting, so a connection that keeps dropping ends with a message.
- A resume sends ``If-Range`` with the ETag the data came with: a file that changed
  on the Hub is fetched anew instead of being glued onto the old bytes.
- Nothing is written past the size the Hub lists; when the Hub lists more than it
  serves, the data is checked against the SHA-256 and placed if it matches.
- A full disk keeps the partial data and says how much space the rest needs.
- Cancel shuts the connection down (``core.hub.cancel``): a stalled read returns at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError
from huggingface_hub.utils import hf_raise_for_status

from core.disk_space import free_disk_bytes, is_disk_full
from core.gguf_meta import file_sha256
from core.hub.cancel import ConnectionCanceller, cancel_connections_on
from core.hub.client import HubClient, shared_ssl_context
from core.hub.errors import (
    AlreadyDownloadingError,
    ChecksumMismatchError,
    DownloadCancelled,
    FileChangedError,
    HubError,
    HubFileNotFoundError,
    InsufficientDiskSpaceError,
    NetworkError,
    RateLimitedError,
    translate_hub_error,
)
from core.human_units import format_bytes, format_wait
from core.paths import missing_folders, models_dir
from core.writer_lock import WriterLock

logger = logging.getLogger(__name__)

PARTIAL_DIR_NAME = ".partial"
PARTIAL_SUFFIX = ".part"
NOTE_SUFFIX = ".part.json"
LOCK_SUFFIX = ".lock"
# Free space kept on top of the file, so a download never fills a disk to the last byte.
DISK_SPACE_MARGIN_BYTES = 64 << 20
SPEED_WINDOW_S = 5.0

_T = TypeVar("_T")


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

    During VERIFYING, ``bytes_done`` counts bytes hashed so far. ``note`` is a
    sentence for the user about something that happened on the way (a dropped
    connection being retried, a file that changed on the Hub, waiting for another
    download of the same file); it comes with one progress report only, so a
    front end shows it once, on its own line or in a status field.
    """

    state: DownloadState
    bytes_done: int = 0
    total_bytes: int | None = None
    bytes_per_second: float = 0.0
    eta_seconds: float | None = None
    resumed_from: int = 0
    bytes_transferred: int = 0
    note: str | None = None

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
        return self._sibling(NOTE_SUFFIX)

    @property
    def lock_path(self) -> Path:
        return self._sibling(LOCK_SUFFIX)

    def _sibling(self, suffix: str) -> Path:
        partial = self.partial_path
        return partial.with_name(partial.name[: -len(PARTIAL_SUFFIX)] + suffix)


def default_destination(repo_id: str) -> Path:
    """Where downloads go unless the user picks a folder: the app's models folder."""
    return models_dir() / repo_id


def write_all(sink: io.FileIO, data: bytes | memoryview) -> None:
    """Write every byte (a raw file may write fewer than asked); OSError on a full disk."""
    view = memoryview(data)
    while view:
        written = sink.write(view)
        view = view[written or 0 :]


@dataclass(frozen=True)
class TransferSettings:
    """Knobs of a transfer; tests shorten the delays and fake the disk.

    Attributes:
        max_attempts: failed attempts in a row without new bytes before giving up.
        max_reconnects: failed attempts in one run, with progress or without: a
            connection that drops every few KiB ends here instead of crawling on.
        max_retry_wait_s: total time one run may spend waiting between attempts.
        retry_delay_s: first backoff delay; doubled per failure in a row.
        max_retry_delay_s: the longest single backoff delay.
        max_retry_after_s: the longest ``Retry-After`` honoured; a server asking for
            more ends the run with the time it asked for, instead of a frozen queue.
        cancel_poll_s: how often the cancel watcher looks at the cancel event.
        wait_for_other_writer_s: how long to wait while another download writes the
            same file; 0 reports it at once (AlreadyDownloadingError).
    """

    max_attempts: int = 4
    max_reconnects: int = 20
    max_retry_wait_s: float = 300.0
    retry_delay_s: float = 1.0
    max_retry_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 30.0
    max_redirects: int = 10
    cancel_poll_s: float = 0.1
    wait_for_other_writer_s: float = 0.0
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

    @property
    def has_checksum(self) -> bool:
        return bool(self.sha256 or self.git_blob_id)


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


class _RangePastEnd(Exception):
    """The server answered 416: the resume offset is at or past its end of the file."""


class _FileChanged(Exception):
    """The bytes on the Hub are not the ones the partial data came from."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class FileDownloader:
    """Downloads one file, reporting progress; cancelled by setting ``cancel_event``.

    Call ``run`` on a worker thread; ``cancel_event`` may be set from any thread and
    ``run`` then returns within about ``cancel_poll_s`` even on a stalled connection.
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
        self._note: dict[str, Any] = {}
        self._canceller = ConnectionCanceller()
        # Retry accounting for the whole run (metadata requests and transfers).
        self._failures = 0
        self._failures_in_a_row = 0
        self._waited_s = 0.0
        # Set once a server resumed at the wrong offset: the rest of the run
        # downloads from the start instead of trusting its ranges.
        self._ranges_usable = True
        self._restarted_short_file = False
        self._served_more_than_listed = False
        self._verified = False
        self._http: httpx2.Client | None = None  # run() opens and closes it

    def run(self) -> Path:
        """Fetch, verify and move the file into place; returns its final path.

        Raises:
            DownloadCancelled: the cancel event was set; partial data is kept.
            AlreadyDownloadingError: another download is writing this file.
            ChecksumMismatchError: the data was corrupt; it was deleted.
            InsufficientDiskSpaceError: too little space, before or during the transfer;
                partial data is kept.
            HubError: gated, not found, network and rate-limit problems.
        """
        request = self._request
        new_folders = missing_folders(request.partial_path.parent)
        lock = WriterLock(request.lock_path)
        try:
            if not self._acquire(lock):
                raise self._already_downloading(lock)
            # Our own HTTP client, not huggingface_hub's shared one: its connections are
            # this download's alone, so a cancel shuts down nothing of anyone else's.
            with (
                cancel_connections_on(self._cancel, self._canceller, self._settings.cancel_poll_s),
                httpx2.Client(
                    follow_redirects=True,
                    max_redirects=self._settings.max_redirects,
                    verify=shared_ssl_context(),
                ) as self._http,
            ):
                return self._run_locked()
        except OSError as exc:
            # Disk errors outside the transfer's writes (the note, the folder, the
            # rename): a full disk, permissions, a read-only or vanished folder. Named
            # here so they read as a sentence, not a traceback.
            if is_disk_full(exc):
                raise InsufficientDiskSpaceError(
                    f"the disk of {request.destination_dir} is full ({exc.strerror}); free "
                    f"some space and retry the download of {request.filename}"
                ) from exc
            raise HubError(
                f"cannot write {request.filename} into {request.destination_dir}: "
                f"{exc.strerror or exc}"
            ) from exc
        finally:
            # Without the lock, the partial data is another download's: hands off.
            if lock.held:
                self._remove_empty_partial()
                lock.release()
            # The partial folder goes once empty; so do the folders this run made (a
            # failed first download, say a wrong repo name, leaves no empty folders).
            for folder in dict.fromkeys([request.partial_path.parent, *new_folders]):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # fails where anything is left, as it should

    def _run_locked(self) -> Path:
        request = self._request
        remote = self._with_retries(self._fetch_remote_file)
        if self._already_complete(remote):
            logger.info("%s is already downloaded and verified", request.final_path)
            self._emit(DownloadState.DONE, remote.size, remote.size, force=True)
            return request.final_path
        partial_size = self._prepare_partial(remote)
        self._check_disk_space(remote, partial_size)
        self._resumed_from = partial_size
        remote = self._transfer_with_retries(remote)
        if not self._verified:
            self._verify(remote)
        request.final_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(request.partial_path, request.final_path)
        request.note_path.unlink(missing_ok=True)
        self._emit(DownloadState.DONE, remote.size, remote.size, force=True)
        logger.info("downloaded %s/%s to %s", request.repo_id, request.filename, request.final_path)
        return request.final_path

    # -- one writer per file ---------------------------------------------------------

    def _acquire(self, lock: WriterLock) -> bool:
        if lock.acquire(0, self._cancel):
            return True
        wait_s = self._settings.wait_for_other_writer_s
        if wait_s <= 0:
            return False
        self._emit(
            DownloadState.QUEUED,
            0,
            0,
            force=True,
            note=f"waiting for another download of {self._request.filename} to finish",
        )
        if lock.acquire(wait_s, self._cancel):
            return True
        self._check_cancelled()
        return False

    def _already_downloading(self, lock: WriterLock) -> AlreadyDownloadingError:
        pid = lock.holder_pid()
        who = (
            "another download in this app"
            if pid == os.getpid()
            else f"another SpecChat process (pid {pid})"
            if pid
            else "another SpecChat process"
        )
        return AlreadyDownloadingError(
            f"{self._request.filename} is already being downloaded into "
            f"{self._request.destination_dir} by {who}; wait for it to finish "
            "(or cancel it there), nothing was changed here"
        )

    # -- what to fetch ---------------------------------------------------------------

    def _fetch_remote_file(self) -> RemoteFile:
        """``_remote_file`` on a helper thread, abandoned on cancel.

        The metadata request goes through huggingface_hub's shared HTTP client, whose
        sockets are not ours to shut down; it only reads, so on cancel it is left to
        finish on its own and the cancel returns at once.
        """
        outcome: list[RemoteFile | Exception] = []
        done = threading.Event()

        def fetch() -> None:
            try:
                outcome.append(self._remote_file())
            except Exception as exc:
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=fetch, name="specchat-hub-metadata", daemon=True).start()
        while not done.wait(self._settings.cancel_poll_s):
            self._check_cancelled()
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

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
        if not final.is_file():
            return False
        if final.stat().st_size != remote.size and not remote.has_checksum:
            return False
        return self._checksum_matches(final, remote)

    def _prepare_partial(self, remote: RemoteFile) -> int:
        """Keep partial data only if it belongs to the same remote file; its size."""
        partial = self._request.partial_path
        note = self._read_note()
        if partial.exists():
            if note.get("identity") != remote.identity:
                self._announce(
                    f"{self._request.filename} changed on the Hub since the partial download "
                    f"started (commit {_short(note.get('commit'))} → {_short(remote.commit)}); "
                    "starting over",
                    remote,
                )
                partial.unlink()
                note = {}
            elif partial.stat().st_size > remote.size:
                logger.info("discarding partial data larger than the file: %s", partial)
                partial.unlink()
                note = {}
        self._note = {
            "repo_id": self._request.repo_id,
            "filename": self._request.filename,
            "identity": remote.identity,
            "size": remote.size,
            "commit": remote.commit,
            "etag": note.get("etag"),
        }
        return partial.stat().st_size if partial.exists() else 0

    def _read_note(self) -> dict[str, Any]:
        try:
            data = json.loads(self._request.note_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_note(self, etag: str | None) -> None:
        self._note["etag"] = etag
        self._request.partial_path.parent.mkdir(parents=True, exist_ok=True)
        self._request.note_path.write_text(json.dumps(self._note))

    def _check_disk_space(self, remote: RemoteFile, partial_size: int) -> None:
        remaining = remote.size - partial_size
        free = self._settings.free_disk_bytes(self._request.destination_dir)
        needed = remaining + DISK_SPACE_MARGIN_BYTES
        if free < needed:
            raise InsufficientDiskSpaceError(
                f"not enough disk space for {self._request.filename}: it needs "
                f"{format_bytes(needed)} ({format_bytes(remaining)} still to download + "
                f"{format_bytes(DISK_SPACE_MARGIN_BYTES)} always left free) and "
                f"{format_bytes(free)} is free on the disk of {self._request.destination_dir}; "
                f"free at least {format_bytes(needed - free)} more",
                more_needed_bytes=needed - free,
            )

    # -- retries ---------------------------------------------------------------------

    def _with_retries(self, operation: Callable[[], _T]) -> _T:
        """Run a request, retrying transient failures under the run's retry budget."""
        while True:
            self._check_cancelled()
            try:
                return operation()
            except (NetworkError, RateLimitedError) as exc:
                self._after_failure(exc, progressed=False)

    def _after_failure(self, error: NetworkError | RateLimitedError, progressed: bool) -> None:
        """Wait before the next attempt, or raise when the run's budget is spent."""
        settings = self._settings
        self._failures += 1
        self._failures_in_a_row = 1 if progressed else self._failures_in_a_row + 1
        retry_after = error.retry_after_seconds
        if retry_after is not None and retry_after > settings.max_retry_after_s:
            # Waiting that long would look like a frozen queue; the message says when.
            raise type(error)(f"{error}{self._kept_clause()}", retry_after) from error
        if self._failures_in_a_row >= settings.max_attempts:
            raise type(error)(
                f"{error}; gave up after {_attempts(self._failures_in_a_row)} in a row "
                f"without progress{self._kept_clause()}",
                retry_after,
            ) from error
        if retry_after is not None:
            delay = retry_after
        else:
            backoff = settings.retry_delay_s * 2 ** (self._failures_in_a_row - 1)
            delay = min(backoff, settings.max_retry_delay_s)
        if self._failures >= settings.max_reconnects or (
            self._waited_s + delay > settings.max_retry_wait_s
        ):
            raise NetworkError(
                f"the connection to the Hub keeps dropping: it failed {self._failures} times "
                f"during this download (last: {error}){self._kept_clause()}",
                retry_after,
            ) from error
        self._announce(
            f"{error}; retrying in {format_wait(delay)} "
            f"(attempt {self._failures + 1} of at most {settings.max_reconnects})"
        )
        if self._cancel.wait(delay):
            raise DownloadCancelled("download cancelled; partial data kept") from error
        self._waited_s += delay

    def _kept_clause(self) -> str:
        kept = self._partial_size()
        if kept == 0:
            return "; nothing was downloaded yet"
        size = self._note.get("size")
        of = f" of {format_bytes(size)}" if isinstance(size, int) else ""
        return (
            f"; {format_bytes(kept)}{of} is kept in {self._request.partial_path}: "
            "retry the download to resume it"
        )

    # -- the transfer ----------------------------------------------------------------

    def _transfer_with_retries(self, remote: RemoteFile) -> RemoteFile:
        """Bring the partial file to the listed size; the RemoteFile it belongs to."""
        changes = 0
        while True:
            self._check_cancelled()
            before = self._partial_size()
            try:
                ended_at_servers_size = self._transfer(remote)
                if self._partial_size() >= remote.size:
                    return remote
                if ended_at_servers_size:
                    # The server says that was the whole file, yet the Hub lists more.
                    raise _RangePastEnd
                raise NetworkError(
                    f"the connection ended after {format_bytes(self._partial_size())} "
                    f"of {format_bytes(remote.size)}"
                )
            except _RangePastEnd:
                if self._short_file_is_complete(remote):
                    return remote
                error = NetworkError(
                    "the Hub serves less than it lists and the data kept does not match "
                    "the checksum; starting over"
                )
            except _FileChanged as changed:
                changes += 1
                remote = self._restart_on_new_version(remote, changed.why, changes)
                continue
            except NetworkError as exc:
                error = exc
            except RateLimitedError as exc:
                self._after_failure(exc, progressed=False)
                continue
            self._after_failure(error, progressed=self._partial_size() > before)

    def _partial_size(self) -> int:
        partial = self._request.partial_path
        return partial.stat().st_size if partial.exists() else 0

    def _transfer(self, remote: RemoteFile) -> bool:
        """One request; True when the body ended where the server said its file ends."""
        request = self._request
        offset = self._partial_size() if self._ranges_usable else 0
        if offset == remote.size:
            return True
        url = self._client.file_url(
            request.repo_id, request.filename, revision=remote.commit or request.revision
        )
        headers = self._client.headers()
        # Byte ranges count bytes of the encoded body: ask for the file as it is, so
        # a proxy that compresses on the fly cannot shift a resume's offsets.
        headers["Accept-Encoding"] = "identity"
        etag = self._note.get("etag")
        if offset:
            headers["Range"] = f"bytes={offset}-"
            # If-Range makes a server answer 200 with the whole new file when the
            # bytes changed, instead of the tail of a different file. Only strong
            # ETags may be used there.
            if isinstance(etag, str) and not etag.startswith("W/"):
                headers["If-Range"] = etag
        timeout = httpx2.Timeout(
            self._settings.read_timeout_s, connect=self._settings.connect_timeout_s
        )
        try:
            assert self._http is not None, "requests are made inside run()"
            with self._http.stream(
                "GET",
                url,
                headers=headers,
                timeout=timeout,
                extensions={"trace": self._canceller.trace},
            ) as response:
                offset, server_size = self._check_response(response, remote, offset, headers)
                end = self._receive(response, remote, offset)
                return end == server_size
        except DownloadCancelled:
            raise
        except (httpx2.HTTPError, HfHubHTTPError) as exc:
            if self._cancel.is_set():
                raise DownloadCancelled("download cancelled; partial data kept") from exc
            if remote.commit and isinstance(exc, RevisionNotFoundError):
                # The commit the partial data came from is gone (history rewritten).
                raise _FileChanged("its commit is no longer on the Hub") from exc
            raise translate_hub_error(
                exc,
                self._client.endpoint,
                request.repo_id,
                request.filename,
                token_sent=self._client.token is not None,
            ) from exc

    def _check_response(
        self, response: httpx2.Response, remote: RemoteFile, offset: int, sent: dict[str, str]
    ) -> tuple[int, int | None]:
        """Decide where the body's bytes go: the offset they start at, and the size of
        the whole file as the server states it (None when it does not say)."""
        if response.status_code == 416 and offset:
            raise _RangePastEnd
        if response.status_code >= 400:
            response.read()
            hf_raise_for_status(response)
        etag = response.headers.get("ETag")
        known = self._note.get("etag")
        if offset and response.status_code == 206:
            if known and etag and etag != known:
                # The server ignored If-Range (or got none): its bytes are another file's.
                raise _FileChanged("its ETag changed")
            if not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                self._ranges_usable = False
                raise NetworkError(
                    "the server resumed at the wrong position; downloading from the start"
                )
        elif offset:
            if "If-Range" in sent and etag != known:
                raise _FileChanged("the server sent a different version")
            logger.info("the server ignored the Range request; downloading from the start")
            offset = 0
        self._save_note(etag)
        self._emit(DownloadState.DOWNLOADING, offset, remote.size, force=True)
        return offset, _stated_size(response)

    def _receive(self, response: httpx2.Response, remote: RemoteFile, offset: int) -> int:
        """Append the body to the partial file, never past the listed size; the end offset."""
        partial = self._request.partial_path
        with partial.open("ab" if offset else "wb", buffering=0) as sink:
            assert isinstance(sink, io.FileIO)  # buffering=0 gives the raw file
            for chunk in response.iter_bytes():
                room = remote.size - offset
                if len(chunk) > room:
                    # Stop at the listed size: a body longer than the file (no or a
                    # wrong Content-Length) never fills the disk; the checksum decides.
                    self._write(sink, chunk[:room], remote)
                    self._transferred += room
                    self._served_more_than_listed = True
                    logger.info("the Hub sent more than the %d bytes it lists", remote.size)
                    return remote.size
                self._write(sink, chunk, remote)
                offset += len(chunk)
                self._transferred += len(chunk)
                self._emit(DownloadState.DOWNLOADING, offset, remote.size)
                self._check_cancelled()
        return offset

    def _write(self, sink: io.FileIO, data: bytes, remote: RemoteFile) -> None:
        try:
            write_all(sink, data)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise self._disk_full(remote) from exc

    def _disk_full(self, remote: RemoteFile) -> InsufficientDiskSpaceError:
        request = self._request
        kept = self._partial_size()
        remaining = remote.size - kept
        needed = remaining + DISK_SPACE_MARGIN_BYTES
        free = self._settings.free_disk_bytes(request.destination_dir)
        more = max(needed - free, 0)
        return InsufficientDiskSpaceError(
            f"the disk of {request.destination_dir} is full: {format_bytes(kept)} of "
            f"{request.filename} was downloaded and is kept in {request.partial_path}; "
            f"the rest needs {format_bytes(needed)} ({format_bytes(remaining)} still to "
            f"download + {format_bytes(DISK_SPACE_MARGIN_BYTES)} always left free) and "
            f"{format_bytes(free)} is free: free at least {format_bytes(more)} and retry the "
            "download to resume it",
            more_needed_bytes=more,
        )

    def _short_file_is_complete(self, remote: RemoteFile) -> bool:
        """After a 416: is what we hold already the whole file? Else start over once."""
        kept = self._partial_size()
        if remote.has_checksum and self._checksum_matches(self._request.partial_path, remote):
            logger.warning(
                "the Hub lists %s as %d bytes but serves %d; the data matches its checksum",
                self._request.filename,
                remote.size,
                kept,
            )
            self._verified = True
            return True
        if self._restarted_short_file or not remote.has_checksum:
            self._discard_partial()
            check = (
                "that data does not match the Hub's checksum"
                if remote.has_checksum
                else "the Hub gives no checksum to check that data"
            )
            raise ChecksumMismatchError(
                f"the Hub lists {self._request.filename} as {format_bytes(remote.size)} but "
                f"serves only {format_bytes(kept)}, and {check}; the data was discarded, "
                "try again later"
            )
        self._restarted_short_file = True
        self._request.partial_path.unlink(missing_ok=True)
        return False

    def _restart_on_new_version(self, remote: RemoteFile, why: str, changes: int) -> RemoteFile:
        """The file changed on the Hub mid-download: drop the old bytes, fetch the new file."""
        name = self._request.filename
        if changes > 1:
            self._discard_partial()
            raise FileChangedError(
                f"{name} keeps changing on the Hub while it downloads ({why}); "
                "the data was discarded, try again later"
            )
        fresh = self._with_retries(self._fetch_remote_file)
        self._discard_partial()
        self._ranges_usable = True
        if fresh.identity != remote.identity:
            self._announce(
                f"{name} changed on the Hub during the download (commit "
                f"{_short(remote.commit)} → {_short(fresh.commit)}); starting over",
                fresh,
            )
        else:
            self._announce(f"{name} was served differently on resume ({why}); starting over")
        self._prepare_partial(fresh)
        self._check_disk_space(fresh, 0)
        self._resumed_from = 0
        return fresh

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled("download cancelled; partial data kept")

    # -- verification ----------------------------------------------------------------

    def _verify(self, remote: RemoteFile) -> None:
        partial = self._request.partial_path
        self._emit(DownloadState.VERIFYING, 0, remote.size, force=True)
        if not self._checksum_matches(partial, remote):
            self._discard_partial()
            cause = (
                f"the Hub sent more data than the {format_bytes(remote.size)} it lists"
                if self._served_more_than_listed
                else "corrupted in transfer"
            )
            raise ChecksumMismatchError(
                f"{self._request.filename} does not match the Hub's checksum ({cause}); "
                "the data was discarded: retry the download"
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

    # -- tidying up ------------------------------------------------------------------

    def _discard_partial(self) -> None:
        self._request.partial_path.unlink(missing_ok=True)
        self._request.note_path.unlink(missing_ok=True)

    def _remove_empty_partial(self) -> None:
        """A failed or cancelled run leaves data to resume from, or nothing at all."""
        request = self._request
        with contextlib.suppress(OSError):
            if request.partial_path.stat().st_size == 0:
                request.partial_path.unlink()
        if not request.partial_path.exists():
            request.note_path.unlink(missing_ok=True)

    # -- progress --------------------------------------------------------------------

    def _announce(self, note: str, remote: RemoteFile | None = None) -> None:
        """Tell the user about a retry or a restart: logged, and sent with the progress."""
        logger.info("%s/%s: %s", self._request.repo_id, self._request.filename, note)
        size = remote.size if remote else self._note.get("size")
        total = size if isinstance(size, int) else 0
        self._emit(DownloadState.DOWNLOADING, self._partial_size(), total, force=True, note=note)

    def _emit(
        self,
        state: DownloadState,
        done: int,
        total: int,
        force: bool = False,
        note: str | None = None,
    ) -> None:
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
                total_bytes=total or None,
                bytes_per_second=speed,
                eta_seconds=eta,
                resumed_from=self._resumed_from,
                bytes_transferred=self._transferred,
                note=note,
            )
        )


def _stated_size(response: httpx2.Response) -> int | None:
    """The whole file's size per the response: Content-Range's total, or a 200's length."""
    if response.status_code == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _short(commit: object) -> str:
    return commit[:8] if isinstance(commit, str) and commit else "unknown"
