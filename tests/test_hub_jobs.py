"""The window's download queue: jobs per model, pause/resume/cancel, shards as one
unit, disk-space refusal, and resuming after a restart from the remembered state."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.hub.client import HubClient
from core.hub.download import DownloadRequest, TransferSettings
from core.hub.errors import InsufficientDiskSpaceError
from core.hub.jobs import (
    DownloadQueue,
    JobFile,
    JobSnapshot,
    JobSpec,
    JobState,
    has_saved_jobs,
)
from core.hub.manager import DownloadManager
from core.library.scan import ModelLibrary
from tests.support.fake_hub import FakeHub, Fault, ServeRule
from tests.support.hub_models import ModelBytes

pytest_plugins = ["tests.hub_fixtures"]

REPO = "tiny/Tiny-Llama-1M-GGUF"
TARGET = "tiny-llama-1m.Q8_0.gguf"
SHARDS = [f"split/tiny-llama-1m.F16-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
WAIT_S = 20.0


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def repo(fake_hub: FakeHub, model_bytes: ModelBytes) -> FakeHub:
    third = len(model_bytes.target) // 3
    parts = [model_bytes.target[:third], model_bytes.target[third : 2 * third]]
    parts.append(model_bytes.target[2 * third :])
    fake_hub.add_repo(REPO, {TARGET: model_bytes.target, **dict(zip(SHARDS, parts, strict=True))})
    return fake_hub


def make_queue(client: HubClient, state: Path, **kwargs: object) -> DownloadQueue:
    manager = DownloadManager(client, settings=TransferSettings(retry_delay_s=0.0))
    return DownloadQueue(manager, state_file=state, **kwargs)  # type: ignore[arg-type]


def spec_for(fake: FakeHub, folder: Path, *names: str) -> JobSpec:
    files = tuple(JobFile(name, fake.file(REPO, name).size) for name in names)
    return JobSpec(REPO, files, folder)


def state_of(queue: DownloadQueue, job_id: int) -> JobState:
    snapshot = queue.snapshot(job_id)
    assert snapshot is not None
    return snapshot.state


def paused_halfway(queue: DownloadQueue, repo: FakeHub, models: Path) -> tuple[int, int]:
    """Submit TARGET (served with ``hold_after`` half its size), pause it there; the
    job id and the bytes its partial file keeps."""
    job = queue.submit(spec_for(repo, models, TARGET))
    assert repo.held.wait(WAIT_S)
    wait_for(lambda: state_of(queue, job) is JobState.DOWNLOADING)
    queue.pause(job)
    repo.release()
    wait_for(lambda: state_of(queue, job) is JobState.PAUSED)
    return job, DownloadRequest(REPO, TARGET, models).partial_path.stat().st_size


def test_pause_keeps_data_and_resume_fetches_only_the_rest(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(hold_after=size // 2)
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    try:
        job, kept = paused_halfway(queue, repo, tmp_path / "models")
        assert 0 < kept < size
        assert repo.wait_until_idle(WAIT_S)
        served = repo.bytes_served[TARGET]
        queue.resume(job)
        wait_for(lambda: state_of(queue, job) is JobState.DONE)
        assert repo.bytes_served[TARGET] - served == size - kept
        assert (tmp_path / "models" / TARGET).read_bytes() == model_bytes.target
    finally:
        queue.shutdown()
    assert '"jobs": []' in (tmp_path / "jobs.json").read_text()


def test_cancel_deletes_partial_data(repo: FakeHub, hub_client: HubClient, tmp_path: Path) -> None:
    repo.rules[TARGET] = ServeRule(hold_after=100_000)
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    try:
        job = queue.submit(spec_for(repo, tmp_path / "models", TARGET))
        assert repo.held.wait(WAIT_S)
        queue.cancel(job)
        repo.release()
        wait_for(lambda: state_of(queue, job) is JobState.CANCELLED)
    finally:
        queue.shutdown()
    assert not (tmp_path / "models" / ".partial").exists()
    assert not (tmp_path / "models" / TARGET).exists()


def test_an_unfinished_job_resumes_after_a_restart(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(hold_after=size // 3)
    state = tmp_path / "jobs.json"
    first = make_queue(hub_client, state)
    first.submit(spec_for(repo, tmp_path / "models", TARGET))
    assert repo.held.wait(WAIT_S)
    repo.release()  # the cancel below must not wait for the hold's safety timeout
    first.shutdown()  # the app closes mid-download
    assert repo.wait_until_idle(WAIT_S)
    kept = DownloadRequest(REPO, TARGET, tmp_path / "models").partial_path.stat().st_size
    served = repo.bytes_served[TARGET]
    assert TARGET in state.read_text() and has_saved_jobs(state)

    second = make_queue(hub_client, state)  # the app started again
    try:
        (job,) = second.snapshots()
        wait_for(lambda: state_of(second, job.job_id) is JobState.DONE)
    finally:
        second.shutdown()
    assert repo.bytes_served[TARGET] - served == size - kept
    assert (tmp_path / "models" / TARGET).read_bytes() == model_bytes.target
    assert not has_saved_jobs(state)


def test_shards_are_placed_together_and_scanned_as_one_model(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    folder = tmp_path / "models"
    try:
        job = queue.submit(spec_for(repo, folder, *SHARDS))
        wait_for(lambda: state_of(queue, job).finished)
        snapshot = queue.snapshot(job)
        assert snapshot is not None and snapshot.state is JobState.DONE, snapshot
        assert snapshot.bytes_done == len(model_bytes.target)
    finally:
        queue.shutdown()
    joined = b"".join((folder / name).read_bytes() for name in SHARDS)
    assert joined == model_bytes.target
    assert not (folder / ".staging").exists()
    entries = ModelLibrary(app_folder=folder, user_folders=[], hf_cache=tmp_path / "hf").scan()
    assert [entry.path.name for entry in entries] == [Path(SHARDS[0]).name]


def test_too_little_disk_space_is_refused_before_anything_is_fetched(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    queue = make_queue(hub_client, tmp_path / "jobs.json", free_disk=lambda _path: 1 << 20)
    try:
        with pytest.raises(InsufficientDiskSpaceError, match="not enough free disk space"):
            queue.submit(spec_for(repo, tmp_path / "models", TARGET))
    finally:
        queue.shutdown()
    assert queue.snapshots() == []
    assert TARGET not in repo.bytes_served


def test_a_waiting_job_pauses_and_cancels_at_once(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    repo.rules[TARGET] = ServeRule(hold_after=100_000)
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    try:
        running = queue.submit(spec_for(repo, tmp_path / "models", TARGET))
        assert repo.held.wait(WAIT_S)
        waiting = queue.submit(spec_for(repo, tmp_path / "models", *SHARDS))
        queue.pause(waiting)
        assert state_of(queue, waiting) is JobState.PAUSED  # not after the first one ends
        queue.resume(waiting)
        assert state_of(queue, waiting) is JobState.QUEUED
        repo.release()
        wait_for(lambda: state_of(queue, running) is JobState.DONE)
        wait_for(lambda: state_of(queue, waiting) is JobState.DONE)
        third = queue.submit(spec_for(repo, tmp_path / "elsewhere", TARGET))
        queue.cancel(third)
        wait_for(lambda: state_of(queue, third) is JobState.CANCELLED)
    finally:
        queue.shutdown()
    assert (tmp_path / "models" / SHARDS[0]).exists()
    assert not (tmp_path / "elsewhere" / TARGET).exists()


def test_downloading_a_model_again_keeps_one_job_for_it(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    try:
        first = queue.submit(spec_for(repo, tmp_path / "models", TARGET))
        wait_for(lambda: state_of(queue, first) is JobState.DONE)
        again = queue.submit(spec_for(repo, tmp_path / "models", TARGET))
        wait_for(lambda: state_of(queue, again) is JobState.DONE)
        # One row for the model, not a second "Done" that doubles the totals.
        assert [snapshot.job_id for snapshot in queue.snapshots()] == [again]
    finally:
        queue.shutdown()


def test_a_retry_note_holds_until_bytes_arrive_again(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.faults[TARGET] = [Fault(drop_after=100_000), Fault(stall_after=400_000)]
    repo.throttle_bytes_per_s = 1_000_000  # progress is reported while the bytes flow
    settings = TransferSettings(retry_delay_s=0.5)
    queue = DownloadQueue(DownloadManager(hub_client, settings=settings), tmp_path / "jobs.json")
    try:
        job = queue.submit(spec_for(repo, tmp_path / "models", TARGET))

        def snapshot() -> JobSnapshot:
            taken = queue.snapshot(job)
            assert taken is not None
            return taken

        wait_for(lambda: "retrying" in (snapshot().note or ""))
        # Reconnected: the resumed request sends 400 kB, then stalls.
        assert repo.held.wait(WAIT_S)
        wait_for(lambda: snapshot().bytes_done >= 300_000)
        assert snapshot().note is None and snapshot().state is JobState.DOWNLOADING
        repo.release()
        wait_for(lambda: state_of(queue, job) is JobState.DONE)
    finally:
        queue.shutdown()


def test_a_resumed_job_waiting_its_turn_still_shows_its_data(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(hold_after=size // 2)
    queue = make_queue(hub_client, tmp_path / "jobs.json")
    try:
        paused, kept = paused_halfway(queue, repo, tmp_path / "models")
        repo.throttle_bytes_per_s = 300_000  # the next job holds the one worker a while
        ahead = queue.submit(spec_for(repo, tmp_path / "models", *SHARDS))
        wait_for(lambda: state_of(queue, ahead) is JobState.DOWNLOADING)
        queue.resume(paused)
        waiting = queue.snapshot(paused)
        assert waiting is not None and waiting.state is JobState.QUEUED
        # Not "0 B": the data is on disk and the download goes on from it.
        assert waiting.bytes_done == kept
        repo.throttle_bytes_per_s = None
        wait_for(lambda: state_of(queue, paused) is JobState.DONE)
    finally:
        queue.shutdown()
