"""Downloads on a bad network and a full disk, against the fake Hub's injected faults.

Every test uses short delays through TransferSettings; none waits out a real
timeout. Bytes served are counted where a resume should save a refetch.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from core.cli.library_commands import run_library_command
from core.hub import download as download_module
from core.hub.client import HubClient
from core.hub.download import (
    DISK_SPACE_MARGIN_BYTES,
    DownloadRequest,
    DownloadState,
    FileDownloader,
    TransferSettings,
)
from core.hub.errors import (
    AlreadyDownloadingError,
    ChecksumMismatchError,
    FileChangedError,
    HubError,
    InsufficientDiskSpaceError,
    InvalidTokenError,
    NetworkError,
    RateLimitedError,
    RedirectLoopError,
    TokenRequiredError,
)
from core.hub.manager import DownloadManager, DownloadSnapshot
from core.human_units import format_bytes
from tests.support.fake_hub import FakeHub, Fault, ServeRule
from tests.support.hub_models import ModelBytes

pytest_plugins = ["tests.hub_fixtures"]

REPO = "tiny/Tiny-Llama-1M-GGUF"
TARGET = "tiny-llama-1m.F32.gguf"
WAIT_S = 20.0
REPO_ROOT = Path(__file__).resolve().parent.parent
FAST: dict[str, object] = {"retry_delay_s": 0.0, "cancel_poll_s": 0.02}


@pytest.fixture
def repo(fake_hub: FakeHub, model_bytes: ModelBytes) -> FakeHub:
    fake_hub.add_repo(REPO, {TARGET: model_bytes.target})
    return fake_hub


class Run:
    """One download through a fresh manager (the app started anew), with its events."""

    def __init__(self, client: HubClient, destination: Path, **settings: object) -> None:
        self.events: list[DownloadSnapshot] = []
        transfer = TransferSettings(**{**FAST, **settings})  # type: ignore[arg-type]
        started = time.monotonic()
        with DownloadManager(client, settings=transfer, listener=self.events.append) as manager:
            task = manager.enqueue(REPO, TARGET, destination_dir=destination)
            assert task.wait(WAIT_S)
        self.seconds = time.monotonic() - started
        self.snapshot = task.snapshot()

    @property
    def state(self) -> DownloadState:
        return self.snapshot.state

    @property
    def error(self) -> str:
        return str(self.snapshot.error)

    @property
    def notes(self) -> list[str]:
        return [e.progress.note for e in self.events if e.progress.note]


def request_for(destination: Path) -> DownloadRequest:
    return DownloadRequest(REPO, TARGET, destination)


def seed_partial(destination: Path, data: bytes, identity: str, size: int) -> DownloadRequest:
    """Partial data as an earlier run would have left it."""
    request = request_for(destination)
    request.partial_path.parent.mkdir(parents=True)
    request.partial_path.write_bytes(data)
    note = {"repo_id": REPO, "filename": TARGET, "identity": identity, "size": size}
    request.note_path.write_text(json.dumps(note))
    return request


def assert_no_leftovers(destination: Path) -> None:
    assert not (destination / ".partial").exists(), list((destination / ".partial").iterdir())


# -- one writer per file ---------------------------------------------------------------


def test_a_second_download_of_the_same_file_is_told_plainly(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.faults[TARGET] = [Fault(stall_after=size // 2)]
    settings = TransferSettings(retry_delay_s=0.0)
    # Two managers stand for two windows or a window and the CLI.
    with (
        DownloadManager(hub_client, settings=settings) as first_app,
        DownloadManager(hub_client, settings=settings) as second_app,
    ):
        first = first_app.enqueue(REPO, TARGET, destination_dir=tmp_path)
        assert repo.held.wait(WAIT_S)
        second = second_app.enqueue(REPO, TARGET, destination_dir=tmp_path)
        assert second.wait(WAIT_S)
        error = second.snapshot().error
        assert isinstance(error, AlreadyDownloadingError)
        assert "already being downloaded" in str(error) and "nothing was changed" in str(error)
        repo.release()
        assert first.result(WAIT_S).read_bytes() == model_bytes.target

    assert repo.bytes_served[TARGET] == size  # nothing fetched twice
    assert_no_leftovers(tmp_path)


def test_a_second_download_can_wait_for_the_first_and_fetches_nothing(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.faults[TARGET] = [Fault(stall_after=size // 2)]
    events: list[DownloadSnapshot] = []
    waiting = TransferSettings(retry_delay_s=0.0, wait_for_other_writer_s=WAIT_S)
    with (
        DownloadManager(hub_client) as first_app,
        DownloadManager(hub_client, settings=waiting, listener=events.append) as second_app,
    ):
        first = first_app.enqueue(REPO, TARGET, destination_dir=tmp_path)
        assert repo.held.wait(WAIT_S)
        second = second_app.enqueue(REPO, TARGET, destination_dir=tmp_path)
        deadline = time.monotonic() + WAIT_S
        while not any(e.progress.note for e in events) and time.monotonic() < deadline:
            time.sleep(0.01)
        repo.release()
        assert first.result(WAIT_S) == second.result(WAIT_S) == tmp_path / TARGET

    assert "waiting for another download" in str([e.progress.note for e in events])
    assert repo.bytes_served[TARGET] == size
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


# -- a full disk -------------------------------------------------------------------------


def test_a_full_disk_keeps_the_partial_data_and_says_how_much_space_is_needed(
    repo: FakeHub,
    hub_client: HubClient,
    tmp_path: Path,
    model_bytes: ModelBytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    size = len(model_bytes.target)
    room = 1 << 20
    disk = {"free": 1 << 40}
    real_write_all = download_module.write_all

    def write_until_full(sink: io.FileIO, data: bytes | memoryview) -> None:
        left = room - sink.tell()
        real_write_all(sink, bytes(data)[: max(left, 0)])
        if len(data) > left:
            disk["free"] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(download_module, "write_all", write_until_full)
    full = Run(hub_client, tmp_path, free_disk_bytes=lambda path: disk["free"])

    assert isinstance(full.snapshot.error, InsufficientDiskSpaceError)
    request = request_for(tmp_path)
    assert request.partial_path.stat().st_size == room
    needed = size - room + DISK_SPACE_MARGIN_BYTES
    assert full.error == (
        f"the disk of {tmp_path} is full: 1.0 MiB of {TARGET} was downloaded and is kept in "
        f"{request.partial_path}; the rest needs {format_bytes(needed)} "
        f"({format_bytes(size - room)} still to download + 64.0 MiB always left free) and "
        f"0 B is free: free at least {format_bytes(needed)} and retry the download to resume it"
    )
    assert full.snapshot.error.more_needed_bytes == needed
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]

    monkeypatch.setattr(download_module, "write_all", real_write_all)
    resumed = Run(hub_client, tmp_path)
    assert resumed.state is DownloadState.DONE, resumed.error
    assert repo.content_requests[TARGET][-1]["range"] == f"bytes={room}-"
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


def _can_mount_tmpfs() -> bool:
    """A private mount namespace (unprivileged user namespaces) where tmpfs mounts work."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as probe:
        command = ["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare -rm and a tmpfs mount")
def test_a_really_full_small_filesystem_gives_the_message_not_a_traceback(
    repo: FakeHub, tmp_path: Path
) -> None:
    """The CLI in a private mount namespace, downloading onto a 70 MiB tmpfs that a
    filler fills up while the transfer stalls."""
    repo.faults[TARGET] = [Fault(stall_after=256 << 10)]
    disk = tmp_path / "disk"
    disk.mkdir()
    filled = tmp_path / "filled"
    script = (
        'mount -t tmpfs -o size=70m tmpfs "$DISK" || exit 99\n'
        '"$PY" -m core.cli.main download "$REPO_ID" "$FILE" --dir "$DISK" &\n'
        "cli=$!\n"
        'while [ ! -s "$PART" ]; do sleep 0.02; done\n'
        'dd if=/dev/zero of="$DISK/filler" bs=1M 2>/dev/null\n'
        'touch "$FILLED"\n'
        "wait $cli\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": repo.url,
        "PYTHONPATH": str(REPO_ROOT),
        "PY": sys.executable,
        "DISK": str(disk),
        "REPO_ID": REPO,
        "FILE": TARGET,
        "PART": str(request_for(disk).partial_path),
        "FILLED": str(filled),
    }
    child = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert repo.held.wait(WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while not filled.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    repo.release()
    _, err = child.communicate(timeout=WAIT_S)

    assert child.returncode == 1, err
    assert "Traceback" not in err and "crashed" not in err
    assert re.search(
        rf"error: the disk of {disk} is full: [\d.]+ [KM]iB of {TARGET} was downloaded and is "
        r"kept in .*; the rest needs [\d.]+ MiB \([\d.]+ MiB still to download \+ 64.0 MiB "
        r"always left free\) and 0 B is free: free at least [\d.]+ MiB and retry the download "
        r"to resume it",
        err,
    ), err
    assert err.count("is full") == 1


def test_the_disk_space_refusal_states_the_margin_it_counts(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    free = 40 << 20  # more than the file, less than the file plus the margin
    refused = Run(hub_client, tmp_path, free_disk_bytes=lambda path: free)

    assert isinstance(refused.snapshot.error, InsufficientDiskSpaceError)
    needed = size + DISK_SPACE_MARGIN_BYTES
    assert (
        f"it needs {format_bytes(needed)} ({format_bytes(size)} still to download + "
        f"64.0 MiB always left free) and 40.0 MiB is free" in refused.error
    )
    assert f"free at least {format_bytes(needed - free)} more" in refused.error
    assert TARGET not in repo.bytes_served
    assert_no_leftovers(tmp_path)


# -- never past the expected size -----------------------------------------------------------


def test_a_body_without_length_is_never_written_past_the_file_size(
    repo: FakeHub,
    hub_client: HubClient,
    tmp_path: Path,
    model_bytes: ModelBytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = len(model_bytes.target)
    repo.faults[TARGET] = [Fault(no_length=True, extra=bytes(3 * size))]
    largest = {"bytes": 0}
    real_write_all = download_module.write_all

    def measured(sink: io.FileIO, data: bytes | memoryview) -> None:
        real_write_all(sink, data)
        largest["bytes"] = max(largest["bytes"], sink.tell())

    monkeypatch.setattr(download_module, "write_all", measured)
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert largest["bytes"] == size
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


def test_more_bytes_than_listed_that_fail_the_checksum_name_that_cause(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.file(REPO, TARGET).listed_size = size - 1000
    run = Run(hub_client, tmp_path)

    assert isinstance(run.snapshot.error, ChecksumMismatchError)
    assert "sent more data than the" in run.error and "corrupted" not in run.error
    assert not (tmp_path / TARGET).exists()
    assert_no_leftovers(tmp_path)


# -- cancel on a stalled connection ---------------------------------------------------------


def test_cancel_on_a_stalled_body_returns_within_a_second(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.faults[TARGET] = [Fault(stall_after=256 << 10)]
    # The default read timeout (30 s) stays: cancel must not wait for it.
    with DownloadManager(hub_client) as manager:
        task = manager.enqueue(REPO, TARGET, destination_dir=tmp_path)
        assert repo.held.wait(WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while not request_for(tmp_path).partial_path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        task.cancel()
        assert task.wait(1.0)
        assert time.monotonic() - started < 1.0
    assert task.state is DownloadState.CANCELLED
    kept = request_for(tmp_path).partial_path.stat().st_size
    assert 0 < kept <= 256 << 10
    repo.release()

    resumed = Run(hub_client, tmp_path)
    assert resumed.state is DownloadState.DONE, resumed.error
    assert repo.content_requests[TARGET][-1]["range"] == f"bytes={kept}-"
    assert resumed.snapshot.progress.resumed_from == kept
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target
    assert size > kept


def test_cancel_while_the_metadata_request_stalls_returns_within_a_second(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.stall_api = True
    with DownloadManager(hub_client) as manager:
        task = manager.enqueue(REPO, TARGET, destination_dir=tmp_path)
        assert repo.held.wait(WAIT_S)
        started = time.monotonic()
        task.cancel()
        assert task.wait(1.0)
        assert time.monotonic() - started < 1.0
    repo.release()
    assert task.state is DownloadState.CANCELLED
    assert_no_leftovers(tmp_path)


def cli(args: list[str], hub: FakeHub) -> subprocess.Popen[str]:
    """specchat-cli in a child process of its own, pointed at the fake Hub."""
    env = {**os.environ, "HF_ENDPOINT": hub.url, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli.main", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_in_the_cli_on_a_stalled_body_exits_at_once_and_keeps_the_data(
    repo: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.faults[TARGET] = [Fault(stall_after=256 << 10)]
    child = cli(["download", REPO, TARGET, "--dir", str(tmp_path)], repo)
    partial = request_for(tmp_path).partial_path
    assert repo.held.wait(WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while not partial.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    # Meanwhile a second process (this one) is told plainly, before touching anything.
    assert run_library_command(["download", REPO, TARGET, "--dir", str(tmp_path)]) == 1
    second = capsys.readouterr().err
    assert f"already being downloaded into {tmp_path} by another SpecChat process" in second
    assert f"(pid {child.pid})" in second
    time.sleep(0.3)  # let the CLI draw the bar: the interrupt lands in its wait loop

    started = time.monotonic()
    child.send_signal(signal.SIGINT)
    assert child.stderr is not None
    # Timed to the CLI's answer, not to the interpreter's exit after it.
    answer = ""
    while "cancelled" not in answer and (piece := child.stderr.readline()):
        answer += piece
    elapsed = time.monotonic() - started
    _, rest = child.communicate(timeout=WAIT_S)
    err = answer + rest
    repo.release()

    assert elapsed < 1.0, elapsed
    assert child.returncode == 130, err
    assert "Traceback" not in err
    kept = partial.stat().st_size
    assert f"cancelled: {kept / 1024:.1f} KiB kept in {partial}" in err
    assert "run the same command again to resume" in err


# -- rate limits and server errors ------------------------------------------------------------


def test_429_and_503_are_retried_after_the_servers_retry_after(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    repo.faults[TARGET] = [
        Fault(status=429, headers={"Retry-After": "1"}),
        Fault(status=503, headers={"Retry-After": "0"}),
        Fault(status=500),
    ]
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert run.seconds >= 1.0  # the Retry-After of the 429 was honoured
    assert len(repo.content_requests[TARGET]) == 4
    assert any("rate-limiting" in note and "retrying in 1 s" in note for note in run.notes)
    assert any("503" in note for note in run.notes)
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


def test_a_retry_after_beyond_the_bound_stops_at_once_and_says_when(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.faults[TARGET] = [Fault(status=429, headers={"Retry-After": "7200"})]
    run = Run(hub_client, tmp_path, max_retry_after_s=5.0)

    assert isinstance(run.snapshot.error, RateLimitedError)
    assert "try again in 2 h" in run.error and "nothing was downloaded yet" in run.error
    assert run.seconds < 5.0
    assert_no_leftovers(tmp_path)


def test_a_rate_limited_metadata_request_is_bounded_too(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.rate_limited = True  # every route answers 429 with Retry-After: 30
    run = Run(hub_client, tmp_path, max_retry_after_s=5.0)

    assert isinstance(run.snapshot.error, RateLimitedError)
    assert "try again in 30 s" in run.error
    assert run.seconds < 5.0


# -- a connection that keeps dropping ---------------------------------------------------------


def test_a_connection_that_keeps_dropping_is_bounded_and_reported(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    piece = 64 << 10
    repo.rules[TARGET] = ServeRule(drop_after=piece, drop_count=10**6)
    run = Run(hub_client, tmp_path, max_reconnects=5)

    assert isinstance(run.snapshot.error, NetworkError)
    assert "keeps dropping" in run.error and "failed 5 times" in run.error
    assert "retry the download to resume it" in run.error
    assert len(repo.content_requests[TARGET]) == 5
    assert request_for(tmp_path).partial_path.stat().st_size == 5 * piece
    assert request_for(tmp_path).note_path.exists()
    assert not request_for(tmp_path).lock_path.exists()
    assert run.seconds < 5.0
    # The user heard about each reconnect while it happened.
    assert sum("retrying" in note for note in run.notes) == 4


def test_time_spent_waiting_for_retries_is_bounded(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.rules[TARGET] = ServeRule(drop_after=64 << 10, drop_count=10**6)
    run = Run(hub_client, tmp_path, retry_delay_s=0.1, max_retry_wait_s=0.25, max_reconnects=100)

    assert "keeps dropping" in run.error
    assert len(repo.content_requests[TARGET]) == 3  # waits of 0.1 + 0.1, a third would pass 0.25
    assert run.seconds < 5.0


# -- the Hub lists a size larger than the file ------------------------------------------


def test_a_listed_size_larger_than_the_file_finishes_on_the_checksum(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.file(REPO, TARGET).listed_size = size + 1000
    first = Run(hub_client, tmp_path)

    assert first.state is DownloadState.DONE, first.error
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target
    assert repo.bytes_served[TARGET] == size
    assert len(repo.content_requests[TARGET]) == 1

    again = Run(hub_client, tmp_path)
    assert again.state is DownloadState.DONE, again.error
    assert repo.bytes_served[TARGET] == size  # verified in place


def test_complete_data_stuck_behind_a_416_is_verified_and_placed(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    file = repo.file(REPO, TARGET)
    file.listed_size = size + 1000
    seed_partial(tmp_path, model_bytes.target, file.sha256, size + 1000)
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert repo.content_requests[TARGET][0]["range"] == f"bytes={size}-"
    assert repo.bytes_served.get(TARGET, 0) == 0
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target
    assert_no_leftovers(tmp_path)


def test_wrong_data_behind_a_416_restarts_cleanly(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    file = repo.file(REPO, TARGET)
    file.listed_size = size + 1000
    seed_partial(tmp_path, bytes(size), file.sha256, size + 1000)
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert repo.bytes_served[TARGET] == size
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


# -- ranges the server gets wrong ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", [Fault(ignore_range=True), Fault(range_shift=1000)], ids=["ignored", "shifted"]
)
def test_a_server_that_ignores_or_shifts_ranges_still_gives_the_right_file(
    fault: Fault, repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    file = repo.file(REPO, TARGET)
    seed_partial(tmp_path, model_bytes.target[: size // 2], file.sha256, size)
    repo.faults[TARGET] = [fault]
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target


# -- the right cause in each message ------------------------------------------------------------


def test_a_new_commit_between_attempts_restarts_and_says_the_file_changed(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    new_content = model_bytes.draft

    def commit() -> None:
        repo.new_commit(REPO, {TARGET: new_content})

    repo.faults[TARGET] = [Fault(drop_after=size // 3, then=commit)]
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    assert (tmp_path / TARGET).read_bytes() == new_content
    assert any("changed on the Hub during the download" in note for note in run.notes)


def test_a_file_changed_under_the_same_commit_is_caught_by_if_range(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    new_content = model_bytes.draft

    def change() -> None:
        repo.change_in_place(REPO, TARGET, new_content)

    repo.faults[TARGET] = [Fault(drop_after=size // 3, then=change)]
    run = Run(hub_client, tmp_path)

    assert run.state is DownloadState.DONE, run.error
    old_etag = f'"{hashlib.sha256(model_bytes.target).hexdigest()}"'
    assert repo.content_requests[TARGET][1]["if-range"] == old_etag
    assert (tmp_path / TARGET).read_bytes() == new_content
    assert any("changed on the Hub" in note for note in run.notes)


def test_a_file_changed_between_runs_starts_over_and_says_so(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.faults[TARGET] = [Fault(drop_after=size // 3)]
    Run(hub_client, tmp_path, max_attempts=1)
    assert request_for(tmp_path).partial_path.stat().st_size == size // 3
    repo.new_commit(REPO, {TARGET: model_bytes.draft})

    run = Run(hub_client, tmp_path)
    assert run.state is DownloadState.DONE, run.error
    assert (tmp_path / TARGET).read_bytes() == model_bytes.draft
    assert any("changed on the Hub since the partial download" in n for n in run.notes)


def test_a_file_that_keeps_changing_is_reported_as_such(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    versions = iter([model_bytes.draft, model_bytes.foreign])

    def commit() -> None:
        repo.new_commit(REPO, {TARGET: next(versions)})

    # Each new version is dropped part-way too, and then replaced.
    repo.faults[TARGET] = [Fault(drop_after=len(model_bytes.draft) // 4, then=commit, times=2)]
    run = Run(hub_client, tmp_path)

    assert isinstance(run.snapshot.error, FileChangedError)
    assert "keeps changing on the Hub" in run.error and "corrupted" not in run.error
    assert_no_leftovers(tmp_path)


def test_401_says_a_token_is_needed_when_none_is_set_and_rejected_when_one_is(
    repo: FakeHub, tmp_path: Path
) -> None:
    repo.faults[TARGET] = [Fault(status=401, times=2)]
    anonymous = Run(HubClient(endpoint=repo.url), tmp_path)
    assert isinstance(anonymous.snapshot.error, TokenRequiredError)
    assert f"{REPO} needs a Hugging Face token" in anonymous.error
    assert "rejected" not in anonymous.error

    with_token = Run(HubClient(endpoint=repo.url, token="hf_wrong"), tmp_path)
    assert isinstance(with_token.snapshot.error, InvalidTokenError)
    assert "rejected the access token" in with_token.error
    assert_no_leftovers(tmp_path)


def test_a_redirect_loop_is_named_and_not_retried(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.faults[TARGET] = [Fault(redirect_loop=True, times=1000)]
    run = Run(hub_client, tmp_path, max_redirects=5)

    assert isinstance(run.snapshot.error, RedirectLoopError)
    assert "redirected in a loop" in run.error and "unexpected" not in run.error
    assert len(repo.content_requests[TARGET]) == 5
    assert_no_leftovers(tmp_path)


# -- tidy failures, tidy terminal ------------------------------------------------------------------


def test_a_failure_before_any_data_leaves_nothing_behind(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.faults[TARGET] = [Fault(status=403)]
    run = Run(hub_client, tmp_path)

    assert isinstance(run.snapshot.error, HubError)
    assert "403" in run.error
    assert_no_leftovers(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_notes_and_warnings_on_their_own_lines_and_each_error_once(
    repo: FakeHub, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.file(REPO, TARGET).listed_size = size + 1000  # logs a warning mid-download
    repo.faults[TARGET] = [Fault(drop_after=size // 2)]
    child = cli(["download", REPO, TARGET, "--dir", str(tmp_path)], repo)
    out, err = child.communicate(timeout=WAIT_S)
    assert child.returncode == 0, err
    assert "downloaded and checksum verified" in out
    segments = re.split("[\r\n]", err)
    note = next(s for s in segments if s.startswith("note: "))
    assert "retrying" in note
    assert any(s.startswith("warning: ") and "matches its checksum" in s for s in segments)
    assert not [s for s in segments if "[" in s and ("note:" in s or "warning:" in s)]

    repo.faults[TARGET] = [Fault(status=403)]
    (tmp_path / TARGET).unlink()
    child = cli(["download", REPO, TARGET, "--dir", str(tmp_path)], repo)
    _, err = child.communicate(timeout=WAIT_S)
    assert child.returncode == 1
    assert err.count("injected 403") == 1, err
    assert "Traceback" not in err


def test_each_retry_note_is_printed_once_when_the_download_fails(
    repo: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No bytes between the attempts: the last report before the failure is a retry
    # note, which the failed task's final snapshot must not carry again.
    repo.faults[TARGET] = [Fault(status=503, headers={"Retry-After": "0"}, times=100)]
    code = run_library_command(["download", REPO, TARGET, "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    notes = [s for s in re.split("[\r\n]", err) if s.startswith("note: ")]
    assert [note.count("attempt") for note in notes] == [1, 1, 1], err
    assert len(set(notes)) == len(notes) == 3, err
    assert err.count("gave up after 4 attempts") == 1, err


def test_a_download_that_fails_at_once_leaves_no_empty_folders(
    hub_client: HubClient, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    request = DownloadRequest("nobody/No-Such-Repo", "x.gguf", models / "nobody" / "No-Such-Repo")
    with pytest.raises(HubError):
        FileDownloader(hub_client, request).run()
    assert list(models.iterdir()) == []
