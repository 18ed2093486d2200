"""The download queue the window shows: one job per model, paused, resumed,
cancelled, and remembered across restarts.

A job is one model: a single GGUF file or every shard of a split one. Shards are
fetched into a hidden staging folder and moved into place together once all are
verified, so the library never sees half a model. Pausing cancels the transfers
but keeps their partial data; resuming queues them again and ``FileDownloader``
continues with a ``Range`` request. Cancelling also deletes the partial data.

Unfinished jobs are written to a small JSON file on every change of state (not
on progress); a new queue on the same file picks them up, so a download continues
after the app was closed or crashed: paused ones stay paused, the rest resume.

Listeners of ``DownloadManager`` run on its worker threads; this class keeps its
state under a lock and a front end reads ``snapshots()`` (e.g. on a timer).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from core.disk_space import free_disk_bytes
from core.hub.client import HubClient
from core.hub.download import (
    DISK_SPACE_MARGIN_BYTES,
    DownloadProgress,
    DownloadRequest,
    DownloadState,
)
from core.hub.errors import (
    GatedRepoAccessError,
    InsufficientDiskSpaceError,
    InvalidTokenError,
    TokenRequiredError,
)
from core.hub.manager import DownloadManager, DownloadSnapshot
from core.human_units import format_bytes
from core.paths import data_dir

logger = logging.getLogger(__name__)

STAGING_DIR_NAME = ".staging"
STATE_VERSION = 1
_TOKEN_ERRORS = (TokenRequiredError, GatedRepoAccessError, InvalidTokenError)


class JobState(Enum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.DOWNLOADING, JobState.VERIFYING)


@dataclass(frozen=True)
class JobFile:
    filename: str
    size: int | None = None


@dataclass(frozen=True)
class JobSpec:
    """What to download: one model's files from one repository into one folder."""

    repo_id: str
    files: tuple[JobFile, ...]
    destination_dir: Path
    revision: str | None = None

    @property
    def sharded(self) -> bool:
        return len(self.files) > 1

    @property
    def download_dir(self) -> Path:
        """Where the files are written: the destination, or a hidden staging folder
        for shards (the library skips hidden folders)."""
        if not self.sharded:
            return self.destination_dir
        stem = Path(self.files[0].filename).name.removesuffix(".gguf")
        return self.destination_dir / STAGING_DIR_NAME / stem

    @property
    def model_path(self) -> Path:
        """The file the library opens (the first shard of a split model)."""
        return self.destination_dir / self.files[0].filename

    @property
    def total_size(self) -> int | None:
        sizes = [file.size for file in self.files]
        return None if None in sizes else sum(size or 0 for size in sizes)

    def request(self, filename: str) -> DownloadRequest:
        return DownloadRequest(self.repo_id, filename, self.download_dir, self.revision)

    def to_json(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "files": [{"filename": f.filename, "size": f.size} for f in self.files],
            "destination_dir": str(self.destination_dir),
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            repo_id=str(data["repo_id"]),
            files=tuple(JobFile(str(f["filename"]), f.get("size")) for f in data["files"]),
            destination_dir=Path(data["destination_dir"]),
            revision=data.get("revision"),
        )


@dataclass(frozen=True)
class JobSnapshot:
    """One job as a front end shows it; immutable, safe to pass between threads."""

    job_id: int
    spec: JobSpec
    state: JobState
    files: tuple[tuple[str, DownloadProgress], ...]
    error: str | None = None
    note: str | None = None
    # The failure was about the token: the front end offers to enter one.
    needs_token: bool = False

    @property
    def bytes_done(self) -> int:
        return sum(progress.bytes_done for _, progress in self.files)

    @property
    def total_bytes(self) -> int | None:
        listed = self.spec.total_size
        if listed is not None:
            return listed
        totals = [progress.total_bytes for _, progress in self.files]
        return None if None in totals else sum(t or 0 for t in totals)

    @property
    def fraction(self) -> float | None:
        total = self.total_bytes
        if self.state is JobState.DONE:
            return 1.0
        return min(self.bytes_done / total, 1.0) if total else None

    @property
    def bytes_per_second(self) -> float:
        return sum(
            progress.bytes_per_second
            for _, progress in self.files
            if progress.state is DownloadState.DOWNLOADING
        )

    @property
    def eta_seconds(self) -> float | None:
        total, speed = self.total_bytes, self.bytes_per_second
        if total is None or speed <= 0 or not self.state.active:
            return None
        return max(total - self.bytes_done, 0) / speed


@dataclass
class _Job:
    job_id: int
    spec: JobSpec
    state: JobState = JobState.QUEUED
    progress: dict[str, DownloadProgress] = field(default_factory=dict)
    tasks: dict[int, str] = field(default_factory=dict)  # task id -> filename
    done_files: set[str] = field(default_factory=set)
    error: str | None = None
    note: str | None = None
    needs_token: bool = False
    # What the user asked for while transfers were still stopping.
    stopping_for: JobState | None = None
    # Bytes done when ``note`` came: the note (a retry, a wait) holds until more arrive.
    note_at: int = 0

    def snapshot(self) -> JobSnapshot:
        files = tuple(
            (
                file.filename,
                self.progress.get(file.filename, DownloadProgress(DownloadState.QUEUED)),
            )
            for file in self.spec.files
        )
        return JobSnapshot(
            self.job_id, self.spec, self.state, files, self.error, self.note, self.needs_token
        )


def default_queue_file() -> Path:
    """Where the window remembers unfinished downloads."""
    return data_dir() / "downloads.json"


class DownloadQueue:
    """Jobs over a ``DownloadManager``; every method is safe from any thread.

    Args:
        manager: runs the transfers; the queue adds itself as a listener.
        state_file: where unfinished jobs are remembered; None keeps them in memory.
        free_disk: free bytes on the disk of a folder (tests fake a full disk).
    """

    def __init__(
        self,
        manager: DownloadManager,
        state_file: Path | None = None,
        free_disk: Callable[[Path], int] = free_disk_bytes,
    ) -> None:
        self._manager = manager
        self._state_file = state_file
        self._free_disk = free_disk
        self._lock = threading.RLock()
        self._jobs: dict[int, _Job] = {}
        self._task_jobs: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._closed = False
        manager.add_listener(self._on_task)
        self._restore()

    # -- what the front end calls -----------------------------------------------------

    def submit(self, spec: JobSpec) -> int:
        """Queue a model's download; returns the job id.

        An unfinished job for the same model is reused (resumed if paused); a
        finished one (done, failed or cancelled) gives way to the new job, so the
        list shows each model once.

        Raises:
            InsufficientDiskSpaceError: the destination's disk cannot hold the rest.
        """
        with self._lock:
            for job in self._jobs.values():
                if job.spec.model_path == spec.model_path and not job.state.finished:
                    if job.state is JobState.PAUSED:
                        self.resume(job.job_id)
                    return job.job_id
        self.check_disk_space(spec)
        with self._lock:
            for old in [j for j in self._jobs.values() if j.spec.model_path == spec.model_path]:
                if old.state.finished:
                    del self._jobs[old.job_id]
            job = _Job(next(self._ids), spec)
            self._jobs[job.job_id] = job
            self._start(job)
            self._save()
            return job.job_id

    def check_disk_space(self, spec: JobSpec) -> None:
        """Refuse a download the disk cannot hold (what is still missing, plus a margin)."""
        missing = 0
        for file in spec.files:
            if file.size is None:
                continue
            request = spec.request(file.filename)
            have = 0
            with contextlib.suppress(OSError):
                have = request.partial_path.stat().st_size
            if request.final_path.exists():
                have = file.size
            missing += max(file.size - have, 0)
        needed = missing + DISK_SPACE_MARGIN_BYTES
        free = self._free_disk(spec.destination_dir)
        if free < needed:
            raise InsufficientDiskSpaceError(
                f"not enough free disk space for {spec.files[0].filename}: it needs "
                f"{format_bytes(needed)} (with a safety margin) and {spec.destination_dir} has "
                f"{format_bytes(free)} free; free some space or choose another folder",
                more_needed_bytes=needed - free,
            )

    def pause(self, job_id: int) -> None:
        """Stop the job's transfers, keeping their data for a resume."""
        self._stop(job_id, JobState.PAUSED)

    def cancel(self, job_id: int) -> None:
        """Stop the job and delete its partial data."""
        self._stop(job_id, JobState.CANCELLED)

    def resume(self, job_id: int) -> None:
        """Continue a paused or failed job where its data ends."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in (JobState.PAUSED, JobState.FAILED):
                return
            job.state = JobState.QUEUED
            job.error = None
            job.note = None
            job.needs_token = False
            job.stopping_for = None
            self._start(job)
            self._save()

    def forget(self, job_id: int) -> None:
        """Drop a finished job from the list."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.state.finished:
                del self._jobs[job_id]

    def set_client(self, client: HubClient) -> None:
        """Use this endpoint and token for transfers started from now on (a new token)."""
        self._manager.client = client

    def snapshots(self) -> list[JobSnapshot]:
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def snapshot(self, job_id: int) -> JobSnapshot | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.snapshot() if job else None

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop the transfers; unfinished jobs stay in the state file and resume next time."""
        with self._lock:
            self._closed = True
        self._manager.shutdown(cancel_running=True, timeout=timeout)

    # -- internals ----------------------------------------------------------------------

    def _start(self, job: _Job) -> None:
        for file in job.spec.files:
            if file.filename in job.done_files:
                continue
            request = job.spec.request(file.filename)
            task = self._manager.enqueue(
                job.spec.repo_id, file.filename, request.destination_dir, job.spec.revision
            )
            job.tasks[task.task_id] = file.filename
            self._task_jobs[task.task_id] = job.job_id

    def _stop(self, job_id: int, outcome: JobState) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                return
            if job.state is JobState.PAUSED or not job.tasks:
                self._settle(job, outcome)
                return
            task_ids = list(job.tasks)
            for task_id in task_ids:
                self._manager.cancel(task_id)
            # Tasks still waiting behind another download stop now: the manager would
            # only report them once it reaches them, after the download ahead ends.
            waiting = {
                t.task_id
                for t in self._manager.tasks()
                if t.state is DownloadState.QUEUED and not t.started.is_set()
            }
            for task_id in task_ids:
                if task_id in waiting:
                    del job.tasks[task_id]
                    self._task_jobs.pop(task_id, None)
            if job.tasks:
                job.stopping_for = outcome
                return
            self._settle(job, outcome)

    def _settle(self, job: _Job, outcome: JobState) -> None:
        """``job`` stops as ``outcome`` (paused, failed, cancelled) and is saved so: a
        cancelled job's partial data goes, another's is counted as the data it keeps."""
        job.state = outcome
        if outcome is JobState.CANCELLED:
            self._discard_partials(job)
        else:
            _count_data_on_disk(job)
        self._save()

    def _on_task(self, snapshot: DownloadSnapshot) -> None:
        """Called on a download worker thread for every task change."""
        to_place: _Job | None = None
        with self._lock:
            job_id = self._task_jobs.get(snapshot.task_id)
            job = self._jobs.get(job_id) if job_id is not None else None
            if job is None or snapshot.task_id not in job.tasks:
                return
            filename = job.tasks[snapshot.task_id]
            job.progress[filename] = _kept_progress(job.progress.get(filename), snapshot.progress)
            done = sum(progress.bytes_done for progress in job.progress.values())
            if snapshot.progress.note:
                job.note, job.note_at = snapshot.progress.note, done
            elif job.note is not None and done > job.note_at:
                job.note = None  # the transfer is moving again: the retry worked
            state = snapshot.state
            if not state.finished:
                if job.state.active:
                    job.state = _running_state(job)
                return
            del job.tasks[snapshot.task_id]
            self._task_jobs.pop(snapshot.task_id, None)
            if state is DownloadState.DONE:
                job.done_files.add(filename)
            elif state is DownloadState.FAILED and job.stopping_for is None:
                job.error = str(snapshot.error) if snapshot.error else "the download failed"
                job.needs_token = isinstance(snapshot.error, _TOKEN_ERRORS)
                job.stopping_for = JobState.FAILED
                for other in list(job.tasks):
                    self._manager.cancel(other)
            if job.tasks:
                return  # other files of the job are still stopping or running
            if self._closed and job.stopping_for is None:
                return  # shut down: the job stays unfinished in the state file
            if job.stopping_for is not None:
                outcome, job.stopping_for = job.stopping_for, None
                self._settle(job, outcome)
                return
            if len(job.done_files) == len(job.spec.files):
                to_place = job
        if to_place is not None:
            self._place(to_place)

    def _place(self, job: _Job) -> None:
        """Move staged shards into place together; mark the job done."""
        spec = job.spec
        error: str | None = None
        if spec.sharded:
            try:
                spec.destination_dir.mkdir(parents=True, exist_ok=True)
                for file in spec.files:
                    staged = spec.download_dir / file.filename
                    final = spec.destination_dir / file.filename
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, final)
                _remove_empty_dirs(spec.download_dir, spec.destination_dir)
            except OSError as exc:
                error = f"cannot move {spec.files[0].filename} into {spec.destination_dir}: {exc}"
        with self._lock:
            job.state = JobState.DONE if error is None else JobState.FAILED
            job.error = error
            job.note = None
            self._save()
        logger.info("download job %s finished: %s", spec.model_path, job.state.value)

    def _discard_partials(self, job: _Job) -> None:
        for file in job.spec.files:
            request = job.spec.request(file.filename)
            for path in (request.partial_path, request.note_path):
                with contextlib.suppress(OSError):
                    path.unlink()
            if job.spec.sharded:
                with contextlib.suppress(OSError):
                    request.final_path.unlink()  # a verified shard of an abandoned set
        first = job.spec.request(job.spec.files[0].filename)
        _remove_empty_dirs(first.partial_path.parent, job.spec.destination_dir)
        if job.spec.sharded:
            _remove_empty_dirs(job.spec.download_dir, job.spec.destination_dir)

    def _save(self) -> None:
        if self._state_file is None:
            return
        unfinished = [
            {"spec": job.spec.to_json(), "paused": job.state is JobState.PAUSED}
            for job in self._jobs.values()
            if not job.state.finished
        ]
        payload = {"version": STATE_VERSION, "jobs": unfinished}
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            temporary.replace(self._state_file)  # a crash never leaves half a file
        except OSError as exc:
            logger.warning("cannot remember the download queue in %s: %s", self._state_file, exc)

    def _restore(self) -> None:
        if self._state_file is None or not self._state_file.exists():
            return
        try:
            payload = json.loads(self._state_file.read_text(encoding="utf-8"))
            saved = [
                (JobSpec.from_json(item["spec"]), bool(item["paused"])) for item in payload["jobs"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable download queue %s: %s", self._state_file, exc)
            return
        with self._lock:
            for spec, paused in saved:
                job = _Job(next(self._ids), spec)
                self._jobs[job.job_id] = job
                for file in spec.files:
                    have = 0
                    with contextlib.suppress(OSError):
                        have = spec.request(file.filename).partial_path.stat().st_size
                    job.progress[file.filename] = DownloadProgress(
                        DownloadState.QUEUED, bytes_done=have, total_bytes=file.size
                    )
                if paused:
                    job.state = JobState.PAUSED
                else:
                    self._start(job)


def has_saved_jobs(state_file: Path) -> bool:
    """True when ``state_file`` remembers unfinished downloads (a cheap look at startup)."""
    try:
        payload = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and bool(payload.get("jobs"))


def _count_data_on_disk(job: _Job) -> None:
    """A stopped job (paused, failed) shows the data it keeps: progress is reported
    a few times a second, so the last report can lag the partial file by a lot."""
    for file in job.spec.files:
        if file.filename in job.done_files:
            continue
        try:
            kept = job.spec.request(file.filename).partial_path.stat().st_size
        except OSError:
            continue
        before = job.progress.get(file.filename, DownloadProgress(DownloadState.QUEUED))
        if kept > before.bytes_done:
            total = before.total_bytes if before.total_bytes is not None else file.size
            job.progress[file.filename] = replace(before, bytes_done=kept, total_bytes=total)


def _kept_progress(before: DownloadProgress | None, now: DownloadProgress) -> DownloadProgress:
    """``now``, unless it is the empty report of a task that has not read its partial
    data yet (queued again after a pause or a failure): then the bytes known before
    stay, or a resumed download would read "0 B", as if its data were gone."""
    if before is None or now.bytes_done or now.total_bytes is not None:
        return now
    return replace(before, state=now.state, bytes_per_second=0.0, eta_seconds=None, note=None)


def _running_state(job: _Job) -> JobState:
    states = {progress.state for progress in job.progress.values()}
    if DownloadState.VERIFYING in states:
        return JobState.VERIFYING
    if DownloadState.DOWNLOADING in states:
        return JobState.DOWNLOADING
    return JobState.QUEUED


def _remove_empty_dirs(folder: Path, stop_at: Path) -> None:
    """Remove empty folders inside ``folder``, then it and its parents while they are
    empty, up to ``stop_at``."""
    if folder.is_dir():
        for root, _dirs, _files in sorted(os.walk(folder), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                Path(root).rmdir()
    current = folder
    while current != stop_at and stop_at in current.parents:
        try:
            current.rmdir()
        except FileNotFoundError:
            pass  # removed above
        except OSError:
            return
        current = current.parent
