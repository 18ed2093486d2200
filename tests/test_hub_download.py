"""Downloads against the fake Hub: resume, checksum, gated repos, drops, disk space."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.hub.client import HubClient
from core.hub.download import DownloadRequest, DownloadState, FileDownloader, TransferSettings
from core.hub.errors import (
    ChecksumMismatchError,
    GatedRepoAccessError,
    HubFileNotFoundError,
    InsufficientDiskSpaceError,
    NetworkError,
)
from core.hub.manager import DownloadManager, DownloadSnapshot
from core.library.pairing import find_local_drafts
from core.library.scan import ModelLibrary
from core.paths import models_dir
from tests.support.fake_hub import FakeHub, ServeRule
from tests.support.hub_models import ModelBytes
from tests.support.memory_keyring import MemoryKeyring

pytest_plugins = ["tests.hub_fixtures"]

REPO = "tiny/Tiny-Llama-1M-GGUF"
TARGET = "tiny-llama-1m.F32.gguf"
DRAFT = "tiny-llama-draft.F32.gguf"
WAIT_S = 20.0
FAST_RETRIES = TransferSettings(max_attempts=3, retry_delay_s=0.0)


@pytest.fixture
def repo(fake_hub: FakeHub, model_bytes: ModelBytes) -> FakeHub:
    fake_hub.add_repo(
        REPO, {TARGET: model_bytes.target, DRAFT: model_bytes.draft, "README.md": b"hi"}
    )
    return fake_hub


def run_download(
    client: HubClient, destination: Path, filename: str = TARGET, **settings: object
) -> DownloadSnapshot:
    events: list[DownloadSnapshot] = []
    transfer = TransferSettings(**{"retry_delay_s": 0.0, **settings})  # type: ignore[arg-type]
    with DownloadManager(client, settings=transfer, listener=events.append) as manager:
        task = manager.enqueue(REPO, filename, destination_dir=destination)
        assert task.wait(WAIT_S)
    return task.snapshot()


def test_download_reports_progress_and_places_verified_file(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    events: list[DownloadSnapshot] = []
    with DownloadManager(hub_client, listener=events.append) as manager:
        task = manager.enqueue(REPO, TARGET, destination_dir=tmp_path / "models")
        path = task.result(WAIT_S)

    assert path == tmp_path / "models" / TARGET
    assert path.read_bytes() == model_bytes.target
    states = [event.state for event in events]
    assert states[0] is DownloadState.QUEUED
    assert DownloadState.DOWNLOADING in states and DownloadState.VERIFYING in states
    assert states[-1] is DownloadState.DONE
    downloading = [e.progress for e in events if e.state is DownloadState.DOWNLOADING]
    assert all(p.total_bytes == len(model_bytes.target) for p in downloading)
    done = [p.bytes_done for p in downloading]
    assert done == sorted(done)
    assert not (tmp_path / "models" / ".partial").exists()
    # The LFS file came through the 302 redirect to the content route.
    assert any(path.startswith("/_lfs/") for _, path, _ in repo.requests)


def test_cancel_keeps_partial_data_and_a_restart_resumes(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(hold_after=size // 2)
    destination = tmp_path / "models"
    with DownloadManager(hub_client) as manager:
        task = manager.enqueue(REPO, TARGET, destination_dir=destination)
        assert repo.held.wait(WAIT_S)
        task.cancel()
        repo.release()
        assert task.wait(WAIT_S)
    assert task.state is DownloadState.CANCELLED
    request = DownloadRequest(REPO, TARGET, destination)
    kept = request.partial_path.stat().st_size
    assert 0 < kept < size
    assert not request.final_path.exists()

    assert repo.wait_until_idle(WAIT_S)
    served_before = repo.bytes_served[TARGET]
    # A new manager stands for the app started again.
    snapshot = run_download(hub_client, destination)
    assert snapshot.state is DownloadState.DONE, snapshot.error
    resumed_bytes = repo.bytes_served[TARGET] - served_before
    assert resumed_bytes < size
    assert resumed_bytes == size - kept
    assert snapshot.progress.resumed_from == kept
    assert request.final_path.read_bytes() == model_bytes.target
    assert any(h.get("range") == f"bytes={kept}-" for _, _, h in repo.requests)


def test_corrupted_data_is_caught_and_never_placed(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    repo.file(REPO, TARGET).corrupt = True
    snapshot = run_download(hub_client, tmp_path)

    assert snapshot.state is DownloadState.FAILED
    assert isinstance(snapshot.error, ChecksumMismatchError)
    assert "checksum" in str(snapshot.error)
    assert not (tmp_path / TARGET).exists()
    assert not DownloadRequest(REPO, TARGET, tmp_path).partial_path.exists()
    assert ModelLibrary(app_folder=tmp_path, user_folders=[]).scan() == []


def test_gated_repo_needs_an_authorised_token(
    fake_hub: FakeHub, model_bytes: ModelBytes, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    fake_hub.add_repo("meta/Llama-Gated-GGUF", {TARGET: model_bytes.target}, gated=True)
    fake_hub.allowed_tokens.add("hf_granted")

    def download(token: str | None) -> DownloadSnapshot:
        client = HubClient(endpoint=fake_hub.url, token=token)
        with DownloadManager(client, settings=FAST_RETRIES) as manager:
            task = manager.enqueue("meta/Llama-Gated-GGUF", TARGET, destination_dir=tmp_path)
            assert task.wait(WAIT_S)
        return task.snapshot()

    anonymous = download(None)
    assert isinstance(anonymous.error, GatedRepoAccessError)
    assert "gated" in str(anonymous.error) and "token" in str(anonymous.error)
    assert isinstance(download("hf_not_granted").error, GatedRepoAccessError)
    assert not (tmp_path / TARGET).exists()

    # The token is taken from the keyring when the client is made from the environment.
    memory_keyring.set_password("specchat", "huggingface-token", "hf_granted")
    client = HubClient.from_environment()
    assert client.token == "hf_granted"
    with DownloadManager(client) as manager:
        path = manager.enqueue("meta/Llama-Gated-GGUF", TARGET, destination_dir=tmp_path).result(
            WAIT_S
        )
    assert path.read_bytes() == model_bytes.target
    assert any(h.get("authorization") == "Bearer hf_granted" for _, _, h in fake_hub.requests)


def test_dropped_connection_resumes_without_refetching(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(drop_after=size // 3, drop_count=1)
    snapshot = run_download(hub_client, tmp_path)

    assert snapshot.state is DownloadState.DONE, snapshot.error
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target
    assert repo.bytes_served[TARGET] == size


def test_connection_that_keeps_dropping_fails_and_keeps_partial_data(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(drop_after=0, drop_count=100)
    repo.rules[TARGET].drop_after = size // 4
    first = run_download(hub_client, tmp_path, max_attempts=1)
    assert isinstance(first.error, NetworkError)
    assert "resume" in str(first.error)
    partial = DownloadRequest(REPO, TARGET, tmp_path).partial_path
    assert partial.stat().st_size == size // 4

    repo.rules.clear()
    second = run_download(hub_client, tmp_path)
    assert second.state is DownloadState.DONE, second.error
    assert repo.bytes_served[TARGET] == size


def test_not_enough_disk_space_is_refused_before_downloading(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    snapshot = run_download(hub_client, tmp_path, free_disk_bytes=lambda path: 1 << 20)

    assert isinstance(snapshot.error, InsufficientDiskSpaceError)
    assert "disk space" in str(snapshot.error)
    assert repo.bytes_served.get(TARGET, 0) == 0
    assert not any("/resolve/" in path for _, path, _ in repo.requests)


def test_missing_file_and_already_downloaded_file(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    missing = run_download(hub_client, tmp_path, filename="nope.gguf")
    assert isinstance(missing.error, HubFileNotFoundError)

    assert run_download(hub_client, tmp_path).state is DownloadState.DONE
    served = repo.bytes_served[TARGET]
    again = run_download(hub_client, tmp_path)
    assert again.state is DownloadState.DONE
    assert repo.bytes_served[TARGET] == served  # verified in place, not fetched again


def test_several_downloads_queue_and_a_queued_one_can_be_cancelled(
    repo: FakeHub, hub_client: HubClient, tmp_path: Path, model_bytes: ModelBytes
) -> None:
    repo.rules[TARGET] = ServeRule(hold_after=1000)
    with DownloadManager(hub_client, max_parallel=1) as manager:
        first = manager.enqueue(REPO, TARGET, destination_dir=tmp_path)
        second = manager.enqueue(REPO, DRAFT, destination_dir=tmp_path)
        third = manager.enqueue(REPO, "README.md", destination_dir=tmp_path)
        assert manager.enqueue(REPO, TARGET, destination_dir=tmp_path) is first
        assert repo.held.wait(WAIT_S)
        assert second.state is DownloadState.QUEUED
        manager.cancel(third.task_id)
        repo.release()
        assert first.result(WAIT_S).read_bytes() == model_bytes.target
        assert second.result(WAIT_S).read_bytes() == model_bytes.draft
        assert third.wait(WAIT_S)
    assert third.state is DownloadState.CANCELLED
    assert not (tmp_path / "README.md").exists()


def test_small_non_lfs_file_is_verified_by_git_blob_id(
    fake_hub: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    fake_hub.add_repo("tiny/plain", {"notes.gguf": b"not lfs"}, lfs=False)
    downloader = FileDownloader(hub_client, DownloadRequest("tiny/plain", "notes.gguf", tmp_path))
    assert downloader.run().read_bytes() == b"not lfs"


def test_library_picks_up_downloads_and_pairs_them(
    repo: FakeHub, hub_client: HubClient, model_bytes: ModelBytes
) -> None:
    with DownloadManager(hub_client) as manager:
        target_task = manager.enqueue(REPO, TARGET)
        draft_task = manager.enqueue(REPO, DRAFT)
        target_path = target_task.result(WAIT_S)
        draft_path = draft_task.result(WAIT_S)
    assert target_path.is_relative_to(models_dir())

    entries = ModelLibrary().scan()
    by_path = {entry.path: entry for entry in entries}
    assert set(by_path) == {target_path, draft_path}
    pairing = find_local_drafts(by_path[target_path], entries)
    assert [candidate.entry.path for candidate in pairing.compatible] == [draft_path]
