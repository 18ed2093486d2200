"""The demo pair through the Models page: the SmolLM2 Q8_0 draft is downloaded from
the fake Hub and loads as the draft of the demo's F32 target."""

from __future__ import annotations

from pathlib import Path

import pytest
import qasync

from core.demo_models import DemoPair
from core.hub.jobs import JobState
from core.paths import models_dir
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

pytest_plugins = ["tests.hub_fixtures"]
NOISE = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)
pytestmark = [pytest.mark.usefixtures("qloop"), pytest.mark.demo_pair, NOISE]

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
DRAFT = "smollm2-135m-instruct-q8_0.gguf"


def test_downloaded_draft_pairs_with_the_demo_target(
    qtbot: object,
    qloop: qasync.QEventLoop,
    fake_hub: FakeHub,
    demo_pair: DemoPair,
    window_files: WindowFiles,
) -> None:
    fake_hub.add_repo(REPO, {DRAFT: demo_pair.draft.read_bytes()}, downloads=10)
    window = open_window(qtbot, window_files)
    page = window.open_models_page()
    run(qloop, wait_until(lambda: page.downloads is not None))
    page.library_view.folder_added.emit(demo_pair.target.parent)  # read in place
    run(qloop, wait_until(lambda: any(e.path == demo_pair.target for e in page.entries())))

    page.search_view.query_edit.setText("smollm2")
    run(qloop, wait_until(lambda: page.search_view.repo_ids() == [REPO]))
    page.search_view.table.selectRow(0)
    run(qloop, wait_until(lambda: bool(page.repo_view.choices())))
    page.repo_view.download_button.click()  # the default choice: the only file
    downloads = page.downloads
    assert downloads is not None
    run(qloop, wait_until(lambda: bool(downloads.snapshots())))
    run(qloop, wait_until(lambda: downloads.snapshots()[0].state.finished, 120), timeout=150)
    assert downloads.snapshots()[0].state is JobState.DONE, downloads.snapshots()[0].error
    downloaded = models_dir() / REPO / DRAFT

    run(qloop, wait_until(lambda: any(e.path == downloaded for e in page.entries())))
    assert page.library_view.select_path(demo_pair.target)
    pairing = page.library_view.pairing
    assert pairing.select_draft(DRAFT)
    chosen = pairing.selected_draft()
    assert chosen is not None and chosen.compatible, chosen
    pairing.use_pair_button.click()
    panel = window.model_panel
    run(
        qloop,
        wait_until(
            lambda: (d := panel.selected_draft()) is not None and d.entry.path == downloaded
        ),
    )
    request, problem = panel.current_request()
    assert request is not None, problem
    pair = run(qloop, window.bridge.load(request), timeout=180)
    assert pair is not None and Path(pair.draft_path or "") == downloaded
    assert Path(pair.target_path) == demo_pair.target
    close_window(qloop, window)
