"""The Models page's views on their own, fed made-up data: search results that are
replaced, the download list's layout, wording and keyboard focus, a repository's
models already downloaded, and the token prompt after a wrong token."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from core.hub.download import DownloadProgress, DownloadState
from core.hub.file_choices import FitVerdict, ModelChoice
from core.hub.files import HubFile
from core.hub.jobs import JobFile, JobSnapshot, JobSpec, JobState
from core.hub.search import RepoSummary
from gui.models.download_queue import DownloadQueueView, job_detail
from gui.models.hub_search import HubSearchView
from gui.models.repo_files import RepoFilesView
from gui.models.token_prompt import TokenPrompt

# Offscreen windows cannot be raised or resized by a window manager; Qt says so.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

MIB = 1 << 20


def repos(*names: str) -> list[RepoSummary]:
    return [RepoSummary(name, 10, 1, False, None, None) for name in names]


def test_new_search_results_start_unselected_and_a_click_opens_one(qtbot: QtBot) -> None:
    view = HubSearchView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    opened: list[str] = []
    view.repo_opened.connect(opened.append)
    view.show_results(repos("a/first-GGUF", "a/second-GGUF"))
    view.table.selectRow(0)
    assert opened == ["a/first-GGUF"]

    # A new search: its first row must not look open while the old repository is shown.
    view.show_results(repos("b/only-GGUF"))
    assert view.table.selectedItems() == []
    rect = view.table.visualRect(view.table.model().index(0, 0))
    QTest.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == ["a/first-GGUF", "b/only-GGUF"]


def snapshot(
    job_id: int,
    state: JobState,
    done: int,
    total: int = 100 * MIB,
    speed: float = 0.0,
    note: str | None = None,
    error: str | None = None,
) -> JobSnapshot:
    spec = JobSpec("o/r", (JobFile(f"model-{job_id}.Q4_K_M.gguf", total),), Path("/models/o/r"))
    progress_state = {
        JobState.DOWNLOADING: DownloadState.DOWNLOADING,
        JobState.DONE: DownloadState.DONE,
    }.get(state, DownloadState.QUEUED)
    progress = DownloadProgress(progress_state, done, total, bytes_per_second=speed)
    return JobSnapshot(job_id, spec, state, ((spec.files[0].filename, progress),), error, note)


def test_many_downloads_scroll_instead_of_squeezing_the_window(qtbot: QtBot) -> None:
    view = DownloadQueueView()
    qtbot.addWidget(view)
    jobs = [snapshot(i, JobState.DONE, 100 * MIB) for i in range(1, 12)]
    view.show_jobs(jobs[:1])
    one_job = view.minimumSizeHint().height()
    error = "the disk is full: " + "kept in a long folder name; " * 8
    view.show_jobs([*jobs, snapshot(12, JobState.FAILED, 40 * MIB, error=error)])
    # Every job used to add a row's height to the window's minimum, until the page
    # no longer fitted the screen and each row's buttons and text were cut.
    assert view.minimumSizeHint().height() == one_job
    view.resize(700, 260)
    view.show()
    qtbot.waitExposed(view)
    failed = view.rows[12]
    for widget in (failed.detail, failed.resume_button, failed.cancel_button):
        assert widget.height() >= widget.minimumSizeHint().height()
    assert failed.detail.height() >= failed.detail.heightForWidth(failed.detail.width())


def test_a_retry_shows_instead_of_a_stale_speed(qtbot: QtBot) -> None:
    note = "cannot reach the Hub: check the network connection; retrying in 4 s"
    waiting = snapshot(1, JobState.DOWNLOADING, 30 * MIB, speed=5 * MIB, note=note)
    line = job_detail(waiting)
    assert note in line
    assert "/s" not in line and "left" not in line

    view = DownloadQueueView()
    qtbot.addWidget(view)
    view.show_jobs([waiting])
    assert "/s" not in view.overall_label.text()


def test_overall_progress_counts_only_what_is_still_to_come(qtbot: QtBot) -> None:
    view = DownloadQueueView()
    qtbot.addWidget(view)
    running = snapshot(3, JobState.DOWNLOADING, 63 * MIB + MIB // 2, total=138 * MIB, speed=MIB)
    view.show_jobs(
        [
            snapshot(1, JobState.DONE, 500 * MIB, total=500 * MIB),
            snapshot(2, JobState.FAILED, 10 * MIB, error="the disk is full"),
            running,
        ]
    )
    assert "63.5 MiB of 138.0 MiB" in view.overall_label.text()
    # The one running download: the overall bar and its own bar read the same.
    assert view.overall_bar.text() == view.rows[3].bar.text() == "46%"

    view.show_jobs([snapshot(1, JobState.DONE, 500 * MIB, total=500 * MIB)])
    assert view.overall_label.text() == "Nothing downloading"
    assert view.overall_bar.isHidden()


def test_clear_finished_removes_done_and_cancelled_but_keeps_failed(qtbot: QtBot) -> None:
    view = DownloadQueueView()
    qtbot.addWidget(view)
    removed: list[int] = []
    view.remove_requested.connect(removed.append)
    assert view.clear_button.isHidden()
    view.show_jobs(
        [
            snapshot(1, JobState.DONE, 100 * MIB),
            snapshot(2, JobState.CANCELLED, 0),
            snapshot(3, JobState.FAILED, 5 * MIB, error="gave up"),  # keeps its Retry
            snapshot(4, JobState.DOWNLOADING, 5 * MIB),
        ]
    )
    assert not view.clear_button.isHidden()
    view.clear_button.click()
    assert removed == [1, 2]


def test_pause_hands_the_keyboard_focus_to_resume_not_to_cancel(qtbot: QtBot) -> None:
    view = DownloadQueueView()
    qtbot.addWidget(view)
    view.show_jobs([snapshot(1, JobState.DOWNLOADING, 10 * MIB)])
    view.show()
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)
    row = view.rows[1]
    row.pause_button.setFocus()
    assert row.pause_button.hasFocus()
    view.show_jobs([snapshot(1, JobState.PAUSED, 10 * MIB)])
    # Space again must resume; on Cancel it deleted the download's data.
    assert row.resume_button.hasFocus()
    view.show_jobs([snapshot(1, JobState.QUEUED, 10 * MIB)])
    assert row.pause_button.hasFocus()


def choice(name: str, size: int, default: bool = False) -> ModelChoice:
    file = HubFile(f"{name}.gguf", size, None, name.rsplit("-", 1)[-1])
    return ModelChoice(name, file.quantization, (file,), FitVerdict.FITS, default)


def test_a_repository_s_models_already_downloaded_say_so(qtbot: QtBot) -> None:
    view = RepoFilesView()
    qtbot.addWidget(view)
    choices = [choice("m-Q4_K_M", 4 * MIB, default=True), choice("m-Q8_0", 8 * MIB)]
    view.show_choices("o/m-GGUF", False, choices, frozenset({"m-Q8_0"}))
    verdicts = [view.table.item(row, 3).text() for row in range(2)]  # type: ignore[union-attr]
    assert verdicts == ["✓ fits", "✓ fits · downloaded"]
    assert "★ recommended" in view.title.text()

    view.mark_downloaded("o/m-GGUF", ("m-Q4_K_M.gguf",))  # a download just finished
    first = view.table.item(0, 3)
    assert first is not None and first.text() == "✓ fits · downloaded"

    view.show_choices("o/one-GGUF", False, [choice("one-Q4_0", MIB)])
    assert "1 GGUF model" in view.title.text() and "models" not in view.title.text()


def test_after_a_wrong_token_the_field_has_the_focus_and_the_text_room(qtbot: QtBot) -> None:
    prompt = TokenPrompt("o/gated-GGUF is gated: downloading it needs a Hugging Face token.")
    qtbot.addWidget(prompt)
    prompt.show()
    prompt.activateWindow()
    qtbot.waitUntil(prompt.isActiveWindow)
    qtbot.keyClicks(prompt.token_edit, "hf_typo")
    QTest.keyClick(prompt.token_edit, Qt.Key.Key_Return)
    assert not prompt.token_edit.isEnabled()  # the Hub is checking it
    prompt.show_error(
        "The Hub does not accept this token: copy it again from your Hugging Face "
        "account settings (Access Tokens)"
    )
    # Typing again replaces the bad token; it used to go nowhere.
    assert prompt.token_edit.hasFocus()
    qtbot.keyClicks(prompt.token_edit, "hf_good")
    assert prompt.token_edit.text() == "hf_good"
    for label in prompt.findChildren(QLabel):
        if label.isVisible() and label.wordWrap():
            assert label.height() >= label.heightForWidth(label.width()), label.text()


def test_the_hub_tab_opens_on_the_most_downloaded_repositories(qtbot: QtBot) -> None:
    view = HubSearchView()
    qtbot.addWidget(view)
    searches: list[tuple[str, str]] = []
    view.search_requested.connect(lambda query, sort: searches.append((query, sort)))
    view.show()
    assert searches == [("", "downloads")]  # not an empty table under "Type to search"
    view.show_results(repos("a/popular-GGUF"))
    assert view.status_label.text().startswith("Most downloaded GGUF repositories: type")
    view.hide()
    view.show()
    assert len(searches) == 1  # once; after that the user's query rules


def test_the_download_list_at_its_smallest_shows_the_header_and_one_whole_row(
    qtbot: QtBot,
) -> None:
    # In a splitter pane, as on the page: given its minimum height, no more.
    pane = QWidget()
    qtbot.addWidget(pane)
    view = DownloadQueueView(pane)
    pane.resize(900, 400)
    pane.show()
    qtbot.waitExposed(pane)
    for jobs in ([], [snapshot(1, JobState.DOWNLOADING, 10 * MIB, speed=MIB)]):
        view.show_jobs(jobs)
        view.setGeometry(0, 0, 900, view.minimumSizeHint().height())
        QApplication.processEvents()
        # The empty list's header was squeezed to half its height, its text cut.
        label = view.overall_label
        assert label.height() >= label.sizeHint().height()
        for row in view.rows.values():
            assert (
                row.visibleRegion().boundingRect().height()
                == row.height()
                >= row.minimumSizeHint().height()
                > 0
            )
