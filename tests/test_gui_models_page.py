"""The Models page against the fake Hub: search, open a repository, download with
progress, pause/resume/cancel, resume after a restart, checksum, gated repositories,
offline, disk space, and the finished model in the library and the picker."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
import qasync
from keyring.errors import NoKeyringError
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from core.hub.client import HubClient
from core.hub.download import DownloadRequest, TransferSettings
from core.hub.jobs import DownloadQueue, JobSnapshot, JobState
from core.hub.manager import DownloadManager
from core.library.scan import ModelLibrary
from core.paths import models_dir
from gui.models.download_queue import JobRow
from gui.models.models_page import ModelsPage
from tests.gui_window_support import (
    WindowFiles,
    close_window,
    open_window,
    qloop_fixture,  # noqa: F401 (fixture)
    run,
    wait_until,
    window_files_fixture,  # noqa: F401 (fixture)
)
from tests.support.fake_hub import FakeHub
from tests.support.hub_models import ModelBytes
from tests.support.memory_keyring import MemoryKeyring

pytest_plugins = ["tests.hub_fixtures"]
# As OFFSCREEN_NOISE (pytest-qt reads one such mark), plus: offscreen windows cannot
# be raised; on a real display raise() brings the page up.
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)
pytestmark = [pytest.mark.usefixtures("qloop"), OFFSCREEN_NOISE]

DRAFT_REPO = "tiny/Tiny-Draft-GGUF"
DRAFT_FILE = "tiny-draft.Q4_K_M.gguf"
GATED_REPO = "gated/Tiny-Gated-GGUF"
GIB = 1 << 30
# The draft is about 0.5 MB: at this rate a download takes about three seconds.
THROTTLE_BYTES_PER_S = 160_000


@pytest.fixture
def hub(fake_hub: FakeHub, model_bytes: ModelBytes) -> FakeHub:
    fake_hub.add_repo(
        DRAFT_REPO,
        {DRAFT_FILE: model_bytes.draft, "tiny-draft.Q8_0.gguf": model_bytes.draft + b"\0" * 64},
        downloads=5000,
        likes=3,
        license="apache-2.0",
    )
    fake_hub.add_repo(
        "tiny/Tiny-Target-GGUF",
        {"tiny-target.F32.gguf": model_bytes.target},
        downloads=900,
        likes=40,
        license="mit",
    )
    fake_hub.add_repo("other/Foreign-Tiny-GGUF", {"foreign.Q4_0.gguf": model_bytes.foreign})
    fake_hub.add_repo(GATED_REPO, {"gated.Q4_K_M.gguf": model_bytes.draft}, gated=True)
    shards = {f"qwen2.5-7b-instruct-q4_k_m-0000{i}-of-00002.gguf": b"x" * 100 for i in (1, 2)}
    fake_hub.add_repo("Qwen/Qwen2.5-7B-Instruct-GGUF", shards, downloads=70)
    fake_hub.add_repo("Qwen/Qwen2.5-0.5B-Instruct-GGUF", {"q.Q8_0.gguf": b"y"}, downloads=50)
    fake_hub.add_repo("Qwen/Qwen2.5-14B-Instruct-GGUF", {"q.Q8_0.gguf": b"z"}, downloads=60)
    return fake_hub


class Folders:
    def __init__(self, root: Path) -> None:
        self.app = root / "app-models"
        self.user = root / "my-models"
        self.hf_cache = root / "hf-cache"
        self.queue = root / "downloads.json"
        for folder in (self.app, self.user):
            folder.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(tmp_path / "page")


PageMaker = Callable[..., ModelsPage]


@pytest.fixture
def make_page(
    qtbot: object, qloop: qasync.QEventLoop, hub: FakeHub, folders: Folders
) -> Iterator[PageMaker]:
    pages: list[ModelsPage] = []

    def make(
        free_disk: Callable[[Path], int] | None = None,
        endpoint: str | None = None,
        models_in_use: Callable[[], list[Path]] | None = None,
    ) -> ModelsPage:
        def queue_factory(client: HubClient) -> DownloadQueue:
            manager = DownloadManager(client, settings=TransferSettings(retry_delay_s=0.0))
            extra = {"free_disk": free_disk} if free_disk is not None else {}
            return DownloadQueue(manager, folders.queue, **extra)  # type: ignore[arg-type]

        page = ModelsPage(
            library=ModelLibrary(folders.app, [folders.user], folders.hf_cache),
            endpoint=endpoint or hub.url,
            queue_factory=queue_factory,
            memory_budget=lambda: 8 * GIB,
            reveal=lambda _path: None,
            **({"models_in_use": models_in_use} if models_in_use else {}),
        )
        qtbot.addWidget(page)  # type: ignore[attr-defined]
        page.show()
        pages.append(page)
        run(qloop, wait_until(lambda: page.downloads is not None))
        return page

    yield make
    for page in pages:
        run(qloop, page.shutdown())
    hub.release()


def search(loop: asyncio.AbstractEventLoop, page: ModelsPage, text: str) -> list[str]:
    table = page.search_view.table
    table.setRowCount(0)
    page.search_view.query_edit.setText(text)  # debounced: no search before the pause
    run(loop, wait_until(lambda: table.rowCount() > 0))
    return page.search_view.repo_ids()


def open_repo(loop: asyncio.AbstractEventLoop, page: ModelsPage, repo_id: str) -> None:
    page.search_view.table.selectRow(page.search_view.repo_ids().index(repo_id))
    view = page.repo_view
    run(loop, wait_until(lambda: view.repo_id == repo_id and bool(view.choices())))


def start_download(
    loop: asyncio.AbstractEventLoop, page: ModelsPage, repo_id: str, name: str
) -> None:
    open_repo(loop, page, repo_id)
    assert page.repo_view.select_choice(name)
    page.repo_view.download_button.click()


def snapshots(page: ModelsPage) -> list[JobSnapshot]:
    assert page.downloads is not None
    return page.downloads.snapshots()


def job_state(page: ModelsPage) -> JobState | None:
    assert page.downloads is not None
    snapshots = page.downloads.snapshots()
    return snapshots[-1].state if snapshots else None


def wait_state(loop: asyncio.AbstractEventLoop, page: ModelsPage, state: JobState) -> None:
    run(loop, wait_until(lambda: job_state(page) is state))


def row(page: ModelsPage) -> JobRow:
    """The first job's row (wait for it with ``detail``)."""
    return next(iter(page.queue_view.rows.values()))


def detail(page: ModelsPage) -> str:
    rows = list(page.queue_view.rows.values())
    return rows[-1].detail.text() if rows else ""


def test_search_download_library_and_picker(
    qtbot: object,
    qloop: qasync.QEventLoop,
    hub: FakeHub,
    window_files: WindowFiles,
    model_bytes: ModelBytes,
    tmp_path: Path,
) -> None:
    """Search → open repo → pick a file → download with progress → in the library →
    usable as a draft for the target already there, straight into the picker."""
    window = open_window(qtbot, window_files)
    window.model_panel.browse_button.click()  # "Models…" under the picker
    page = window.models_page
    assert page is not None and page.isVisible()
    run(qloop, wait_until(lambda: page.downloads is not None))
    target_folder = tmp_path / "targets"
    target_folder.mkdir()
    target = target_folder / "tiny-target.F32.gguf"
    target.write_bytes(model_bytes.target)
    page.library_view.folder_added.emit(target_folder)
    run(qloop, wait_until(lambda: any(e.path == target for e in page.entries())))

    assert search(qloop, page, "tiny/") == [DRAFT_REPO, "tiny/Tiny-Target-GGUF"]
    page.search_view.sort_combo.setCurrentIndex(page.search_view.sort_combo.findData("likes"))
    run(qloop, wait_until(lambda: page.search_view.repo_ids()[0] == "tiny/Tiny-Target-GGUF"))
    assert page.search_view.table.item(0, 6).text() == "mit"

    open_repo(qloop, page, DRAFT_REPO)
    choices = page.repo_view.choices()
    assert [c.name for c in choices] == ["tiny-draft.Q4_K_M", "tiny-draft.Q8_0"]
    assert [c.default for c in choices] == [False, True]  # the largest that fits
    selected = page.repo_view.selected_choice()
    assert selected is not None and selected.default

    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    assert page.repo_view.select_choice("tiny-draft.Q4_K_M")
    page.repo_view.download_button.click()
    run(qloop, wait_until(lambda: bool(page.queue_view.rows) and row(page).bar.value() > 0))
    run(qloop, wait_until(lambda: "/s" in row(page).detail.text()))
    assert "left" in row(page).detail.text()
    wait_state(qloop, page, JobState.DONE)
    downloaded = models_dir() / DRAFT_REPO / DRAFT_FILE
    assert downloaded.read_bytes() == model_bytes.draft

    # In the library at once, and a usable draft for the target.
    run(qloop, wait_until(lambda: any(e.path == downloaded for e in page.entries())))
    assert page.library_view.select_path(target)
    pairing = page.library_view.pairing
    usable = [c.entry.path for c in pairing.candidates() if c.compatible]
    assert usable == [downloaded]
    assert "Target + draft" in pairing.fit_text() and "RAM" in pairing.fit_text()
    pairing.use_pair_button.click()
    panel = window.model_panel
    run(qloop, wait_until(lambda: panel.selected_draft() is not None))
    draft = panel.selected_draft()
    selected_target = panel.selected_target()
    assert selected_target is not None and selected_target.path == target
    assert draft is not None and draft.entry.path == downloaded and draft.compatible
    # And the engine takes it: the pair loads.
    request, problem = panel.current_request()
    assert request is not None, problem
    pair = run(qloop, window.bridge.load(request))
    assert pair is not None and Path(pair.draft_path or "") == downloaded
    # Loaded now: the page refuses to delete it from under the engine.
    entry = next(e for e in page.entries() if e.path == downloaded)
    box = page.confirm_delete(entry)
    assert "is loaded right now" in box.text()
    box.button(QMessageBox.StandardButton.Ok).click()  # type: ignore[union-attr]
    close_window(qloop, window)


def test_window_resumes_unfinished_downloads_at_start(
    qtbot: object,
    qloop: qasync.QEventLoop,
    hub: FakeHub,
    window_files: WindowFiles,
    model_bytes: ModelBytes,
) -> None:
    window = open_window(qtbot, window_files)
    assert window.models_page is None  # nothing to resume: the page waits to be asked for
    page = window.open_models_page()
    run(qloop, wait_until(lambda: page.downloads is not None))
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: hub.bytes_served.get(DRAFT_FILE, 0) > 100_000))
    close_window(qloop, window)  # quit mid-download
    assert hub.wait_until_idle(20)
    hub.throttle_bytes_per_s = None

    again = open_window(qtbot, window_files)
    resumed = again.models_page
    assert resumed is not None and not resumed.isVisible()  # resumes in the background
    run(
        qloop,
        wait_until(lambda: job_state(resumed) is JobState.DONE if resumed.downloads else False),
    )
    downloaded = models_dir() / DRAFT_REPO / DRAFT_FILE
    assert downloaded.read_bytes() == model_bytes.draft
    close_window(qloop, again)


def test_pause_resume_and_cancel(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    page = make_page()
    size = hub.file(DRAFT_REPO, DRAFT_FILE).size
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(
        qloop, wait_until(lambda: bool(page.queue_view.rows) and row(page).pause_button.isVisible())
    )
    run(qloop, wait_until(lambda: hub.bytes_served.get(DRAFT_FILE, 0) > 100_000))
    row(page).pause_button.click()
    run(qloop, wait_until(lambda: "Paused" in detail(page)))
    assert job_state(page) is JobState.PAUSED
    assert hub.wait_until_idle(20)
    kept = DownloadRequest(DRAFT_REPO, DRAFT_FILE, folders.app / DRAFT_REPO).partial_path
    kept_bytes = kept.stat().st_size
    served = hub.bytes_served[DRAFT_FILE]
    hub.throttle_bytes_per_s = None
    row(page).resume_button.click()
    wait_state(qloop, page, JobState.DONE)
    assert hub.bytes_served[DRAFT_FILE] - served == size - kept_bytes

    # Cancel: a second model, stopped half-way, leaves nothing behind.
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q8_0")
    run(qloop, wait_until(lambda: len(page.queue_view.rows) == 2))
    second = page.queue_view.rows[max(page.queue_view.rows)]
    run(qloop, wait_until(lambda: second.cancel_button.isVisible()))
    run(qloop, wait_until(lambda: hub.bytes_served.get("tiny-draft.Q8_0.gguf", 0) > 0))
    second.cancel_button.click()
    wait_state(qloop, page, JobState.CANCELLED)
    assert not (folders.app / DRAFT_REPO / "tiny-draft.Q8_0.gguf").exists()
    assert not (folders.app / DRAFT_REPO / ".partial").exists()


def test_download_resumes_after_the_app_restarts(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    size = hub.file(DRAFT_REPO, DRAFT_FILE).size
    first = make_page()
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    search(qloop, first, "draft")
    start_download(qloop, first, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: hub.bytes_served.get(DRAFT_FILE, 0) > 150_000))
    run(qloop, first.shutdown())  # the app closes mid-download
    assert hub.wait_until_idle(20)
    partial = DownloadRequest(DRAFT_REPO, DRAFT_FILE, folders.app / DRAFT_REPO).partial_path
    kept = partial.stat().st_size
    served = hub.bytes_served[DRAFT_FILE]
    assert 0 < kept < size

    hub.throttle_bytes_per_s = None
    second = make_page()  # the app started again: the job comes back and continues
    wait_state(qloop, second, JobState.DONE)
    assert hub.bytes_served[DRAFT_FILE] - served == size - kept
    final = folders.app / DRAFT_REPO / DRAFT_FILE
    run(qloop, wait_until(lambda: any(e.path == final for e in second.entries())))


def test_checksum_mismatch_places_nothing(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    hub.file(DRAFT_REPO, DRAFT_FILE).corrupt = True
    page = make_page()
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: "Failed" in detail(page)))
    assert "does not match the Hub's checksum" in row(page).detail.text()
    assert row(page).resume_button.text() == "Retry"
    assert not (folders.app / DRAFT_REPO / DRAFT_FILE).exists()
    assert not (folders.app / DRAFT_REPO / ".partial").exists()


def test_gated_repo_asks_for_a_token_and_says_when_it_is_wrong(
    qloop: qasync.QEventLoop,
    hub: FakeHub,
    make_page: PageMaker,
    folders: Folders,
    memory_keyring: MemoryKeyring,
) -> None:
    hub.allowed_tokens.add("hf_granted")
    hub.known_tokens.add("hf_not_granted")
    page = make_page()
    results = search(qloop, page, "gated")
    assert results == [GATED_REPO]
    assert page.search_view.table.item(0, 5).text() == "gated: token needed"
    start_download(qloop, page, GATED_REPO, "gated.Q4_K_M")
    prompt = page.token_prompt
    assert prompt is not None and prompt.isVisible()
    assert page.downloads is not None and page.downloads.snapshots() == []

    prompt.token_edit.setText("hf_typo")
    prompt.buttons.accepted.emit()
    run(qloop, wait_until(lambda: prompt.error_label.isVisible()))
    assert "does not accept this token" in prompt.error_label.text()
    assert memory_keyring.secrets == {}

    # A real token of an account without access: stored, but the Hub refuses the file.
    prompt.token_edit.setText("hf_not_granted")
    prompt.buttons.accepted.emit()
    run(qloop, wait_until(lambda: "Failed" in detail(page)))
    assert "is gated" in row(page).detail.text()
    run(qloop, wait_until(lambda: page.token_prompt is not None))
    again = page.token_prompt
    assert again is not None and "accept its terms" in again.reason_label.text()

    again.token_edit.setText("hf_granted")
    again.buttons.accepted.emit()
    wait_state(qloop, page, JobState.DONE)
    assert list(memory_keyring.secrets.values()) == ["hf_granted"]
    assert (folders.app / GATED_REPO / "gated.Q4_K_M.gguf").exists()


def test_offline_endpoint_says_so(qloop: qasync.QEventLoop, make_page: PageMaker) -> None:
    page = make_page(endpoint="http://127.0.0.1:9")
    page.search_view.query_edit.setText("qwen")
    status = page.search_view.status_label
    run(qloop, wait_until(lambda: status.text().startswith("Cannot reach the Hub")))
    assert page.search_view.table.rowCount() == 0


def test_too_little_disk_space_is_refused(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    page = make_page(free_disk=lambda _path: 10 << 20)
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    status = page.repo_view.status_label
    run(qloop, wait_until(lambda: status.text().startswith("Not enough free disk space")))
    assert page.downloads is not None and page.downloads.snapshots() == []
    assert DRAFT_FILE not in hub.bytes_served
    assert not (folders.app / DRAFT_REPO).exists()


def test_large_folder_scans_without_freezing_and_new_files_appear(
    qloop: qasync.QEventLoop, make_page: PageMaker, folders: Folders, model_bytes: ModelBytes
) -> None:
    source = folders.user / "model-000.gguf"
    source.write_bytes(model_bytes.draft)
    for index in range(1, 300):
        os.link(source, folders.user / f"model-{index:03d}.gguf")
    (folders.user / "broken.gguf").write_bytes(b"GGUF\x03\x00")  # a truncated header

    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    page = make_page()
    table = page.library_view.model
    run(qloop, wait_until(lambda: table.rowCount() == 301))
    timer.stop()
    # The scan ran in a thread: the event loop kept turning (generous bound: shared CI).
    assert max(gaps) < 0.5, max(gaps)
    broken = next(e for e in page.entries() if e.path.name == "broken.gguf")
    row_index = table.row_of(broken.path)
    assert "cannot be used" in table.data(table.index(row_index, 1))
    assert "Delete" not in page.library_view.delete_button.toolTip()

    shutil.copy(source, folders.app / "new-arrival.gguf")
    QApplication.sendEvent(page, QEvent(QEvent.Type.WindowActivate))
    run(qloop, wait_until(lambda: table.rowCount() == 302))


def test_delete_only_downloaded_models(
    qloop: qasync.QEventLoop, make_page: PageMaker, folders: Folders, model_bytes: ModelBytes
) -> None:
    downloaded = folders.app / "owner" / "repo" / "mine.gguf"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_bytes(model_bytes.draft)
    (folders.user / "theirs.gguf").write_bytes(model_bytes.draft)
    page = make_page()
    view = page.library_view
    run(qloop, wait_until(lambda: view.model.rowCount() == 2))
    assert view.select_path(folders.user / "theirs.gguf")
    assert not view.delete_button.isEnabled()
    assert view.select_path(downloaded)
    assert view.delete_button.isEnabled()
    entry = view.selected_entry()
    assert entry is not None
    box = page.confirm_delete(entry)
    button = box.button(QMessageBox.StandardButton.Yes)
    assert button is not None
    button.click()
    run(qloop, wait_until(lambda: view.model.rowCount() == 1))
    assert not downloaded.exists() and not (folders.app / "owner").exists()
    assert (folders.user / "theirs.gguf").exists()


def test_screenshot_of_search_results_and_a_running_download(
    qloop: qasync.QEventLoop,
    hub: FakeHub,
    make_page: PageMaker,
    folders: Folders,
    model_bytes: ModelBytes,
    tmp_path: Path,
) -> None:
    """Saves the page to a PNG (path printed with ``pytest -s``); set
    ``SPECCHAT_MODELS_SCREENSHOT`` to a file path to keep a copy. A second PNG
    shows the library with a target selected, once the download is done."""
    (folders.user / "tiny-target.F32.gguf").write_bytes(model_bytes.target)
    (folders.user / "foreign.Q4_0.gguf").write_bytes(model_bytes.foreign)
    (folders.user / "half-copied.gguf").write_bytes(model_bytes.draft[:5000])
    page = make_page()
    page.resize(1200, 760)
    search(qloop, page, "tiny")
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S / 2
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: "left" in detail(page)))
    run(qloop, wait_until(lambda: row(page).bar.value() > 150))
    image = page.grab().toImage()
    path = tmp_path / "models-page.png"
    assert image.save(str(path))
    print(f"Models page screenshot: {path}")
    if copy_to := os.environ.get("SPECCHAT_MODELS_SCREENSHOT"):
        shutil.copy(path, copy_to)
    assert image.width() >= 1000 and image.height() >= 700
    assert page.search_view.table.rowCount() == 4
    assert job_state(page) is JobState.DOWNLOADING

    hub.throttle_bytes_per_s = None
    wait_state(qloop, page, JobState.DONE)
    page.tabs.setCurrentIndex(0)
    view = page.library_view
    run(qloop, wait_until(lambda: view.model.rowCount() == 4))
    assert view.select_path(folders.user / "tiny-target.F32.gguf")
    library_png = tmp_path / "models-library.png"
    assert page.grab().save(str(library_png))
    print(f"Library screenshot: {library_png}")
    if copy_to:
        shutil.copy(library_png, Path(copy_to).with_name("models-library.png"))


def test_sharded_model_is_one_choice_and_drafts_are_found_on_the_hub(
    qloop: qasync.QEventLoop, make_page: PageMaker
) -> None:
    page = make_page()
    search(qloop, page, "qwen")
    open_repo(qloop, page, "Qwen/Qwen2.5-7B-Instruct-GGUF")
    (choice,) = page.repo_view.choices()
    assert choice.sharded and choice.size == 200 and choice.default
    label = page.repo_view.table.item(0, 0)
    assert label is not None and "(2 parts)" in label.text()
    page.repo_view.drafts_button.click()
    drafts = page.repo_view.drafts_table
    run(qloop, wait_until(lambda: drafts.rowCount() > 0))
    assert drafts.rowCount() == 1  # smaller only: the 14B model is no draft for a 7B one
    item = drafts.item(0, 0)
    assert item is not None and item.text() == "Qwen/Qwen2.5-0.5B-Instruct-GGUF"


def test_typing_sends_one_search_and_errors_read_plainly(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    page = make_page()
    searches = lambda: [p for _, p, _ in hub.requests if p.startswith("/api/models?")]  # noqa: E731
    before = len(searches())
    for prefix in ("q", "qw", "qwe", "qwen"):
        page.search_view.query_edit.setText(prefix)  # faster than the debounce
    run(qloop, wait_until(lambda: page.search_view.table.rowCount() == 3))
    assert len(searches()) == before + 1 and "search=qwen" in searches()[-1]

    hub.rate_limited = True
    page.search_view.query_edit.setText("tiny")
    status = page.search_view.status_label
    run(qloop, wait_until(lambda: "rate-limiting" in status.text()))
    assert "try again in 30 s" in status.text()
    hub.rate_limited = False

    # Folders: one added, then removed again; its models leave the library.
    extra = folders.user.parent / "extra"
    extra.mkdir()
    (extra / "extra.gguf").write_bytes(b"GGUF")
    page.library_view.folder_added.emit(extra)
    view = page.library_view
    run(qloop, wait_until(lambda: view.folders_list.count() == 4))
    run(qloop, wait_until(lambda: view.model.rowCount() == 1))
    view.folders_list.setCurrentRow(2)
    assert view.remove_folder_button.isEnabled()
    view.remove_folder_button.click()
    run(qloop, wait_until(lambda: view.folders_list.count() == 3))
    run(qloop, wait_until(lambda: view.model.rowCount() == 0))
    assert (extra / "extra.gguf").exists()


def test_esc_closes_the_window_and_no_empty_download_bar_shows(
    qtbot: QtBot, make_page: PageMaker
) -> None:
    page = make_page()
    page.show()
    qtbot.waitExposed(page)
    # "No downloads" beside an empty bar read as a download stuck at 0%.
    assert page.queue_view.overall_label.text() == "No downloads"
    assert not page.queue_view.overall_bar.isVisible()
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    QTest.keyClick(page, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not page.isVisible())


class NoKeyring(MemoryKeyring):
    """A system without a usable keyring (a minimal desktop, a container)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("No recommended backend was available.")


def test_a_good_token_works_on_a_system_without_a_keyring(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker, folders: Folders
) -> None:
    hub.allowed_tokens.add("hf_granted")
    keyring.set_keyring(NoKeyring())  # the memory_keyring fixture puts the old one back
    page = make_page()
    search(qloop, page, "gated")
    start_download(qloop, page, GATED_REPO, "gated.Q4_K_M")
    prompt = page.token_prompt
    assert prompt is not None
    prompt.token_edit.setText("hf_granted")
    prompt.buttons.accepted.emit()
    # It used to stop here with "cannot store the token in the OS keyring".
    wait_state(qloop, page, JobState.DONE)
    assert (folders.app / GATED_REPO / "gated.Q4_K_M.gguf").exists()
    # Said once more with the download's own line, which would otherwise replace it.
    run(qloop, wait_until(lambda: "Downloaded" in page.status_label.text()))
    assert "used until SpecChat closes" in page.status_label.text()


def test_a_loaded_model_is_not_deleted(
    qloop: qasync.QEventLoop, make_page: PageMaker, folders: Folders, model_bytes: ModelBytes
) -> None:
    loaded = folders.app / "owner" / "repo" / "loaded.gguf"
    loaded.parent.mkdir(parents=True)
    loaded.write_bytes(model_bytes.draft)
    page = make_page(models_in_use=lambda: [loaded])
    view = page.library_view
    run(qloop, wait_until(lambda: view.model.rowCount() == 1))
    entry = view.model.entry(0)
    assert entry is not None
    box = page.confirm_delete(entry)
    assert "is loaded right now" in box.text()
    assert box.button(QMessageBox.StandardButton.Yes) is None  # nothing to confirm
    box.button(QMessageBox.StandardButton.Ok).click()  # type: ignore[union-attr]
    run(qloop, asyncio.sleep(0.2))
    assert loaded.exists()


def test_a_failure_leaves_the_status_line_once_retried(
    qloop: qasync.QEventLoop, hub: FakeHub, make_page: PageMaker
) -> None:
    hub.file(DRAFT_REPO, DRAFT_FILE).corrupt = True
    page = make_page()
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: "Failed" in detail(page)))
    assert "download of tiny-draft.Q4_K_M.gguf failed" in page.status_label.text()
    hub.file(DRAFT_REPO, DRAFT_FILE).corrupt = False
    hub.throttle_bytes_per_s = THROTTLE_BYTES_PER_S
    row(page).resume_button.click()
    run(qloop, wait_until(lambda: job_state(page) is JobState.DOWNLOADING))
    run(qloop, wait_until(lambda: page.status_label.text() == ""))
    hub.throttle_bytes_per_s = None
    wait_state(qloop, page, JobState.DONE)


def test_the_first_download_shows_whole_and_later_ones_move_nothing(
    qtbot: QtBot, qloop: qasync.QEventLoop, make_page: PageMaker
) -> None:
    page = make_page()
    page.resize(1100, 720)
    qtbot.waitExposed(page)
    search(qloop, page, "draft")
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q4_K_M")
    run(qloop, wait_until(lambda: len(page.queue_view.rows) == 1))
    QApplication.processEvents()
    # The list had the height of its header; its first row came in cut off.
    first = page.queue_view.rows[min(page.queue_view.rows)]
    assert (
        first.visibleRegion().boundingRect().height()
        == first.height()
        >= first.minimumSizeHint().height()
        > 0
    )
    button = page.repo_view.download_button
    where = button.mapTo(page, button.rect().topLeft())
    start_download(qloop, page, DRAFT_REPO, "tiny-draft.Q8_0")
    run(qloop, wait_until(lambda: len(page.queue_view.rows) == 2))
    QApplication.processEvents()
    # More downloads scroll in the list: the Download button stays under the mouse,
    # also once they are done ("Clear finished" and a status line appear).
    assert button.mapTo(page, button.rect().topLeft()) == where
    run(qloop, wait_until(lambda: all(s.state is JobState.DONE for s in snapshots(page))))
    QApplication.processEvents()
    assert page.queue_view.clear_button.isVisible()
    assert button.mapTo(page, button.rect().topLeft()) == where
