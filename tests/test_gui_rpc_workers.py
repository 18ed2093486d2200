"""The model picker's RPC workers: listed, checked over the wire, passed into the load."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from core.engine.config import DraftSource, ModelConfig
from core.rpc.probe import DEFAULT_TIMEOUT_S
from core.settings import LoadRequest, SettingsStore
from gui.panels.rpc_workers import RpcWorkersBox
from tests.support.rpc_workers import free_port, require_rpc_build, start_worker
from tests.test_gui_model_panel import FakePairInfo, Folder, make_panel, models, settings

__all__ = ["models", "settings"]  # fixtures shared with the model panel's tests
CHECK_TIMEOUT_MS = 15_000


def test_the_panel_passes_the_workers_to_the_target_and_the_draft_only_when_asked(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    assert panel.select_target(models.target)
    panel.set_draft_source(DraftSource.MODEL)
    assert panel.select_draft(models.draft)
    box = panel.rpc_workers

    box.workers_edit.setText("10.0.0.7")
    box.workers_edit.editingFinished.emit()
    assert not panel.load_button.isEnabled()
    assert "host:port" in panel.load_button.toolTip()
    assert "host:port" in box.status_label.text()

    box.workers_edit.setText("10.0.0.7:50052, 10.0.0.8:50052")
    box.split_edit.setText("3,1")
    box.split_edit.editingFinished.emit()
    assert panel.load_button.isEnabled()
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.load_button.click()
    request = blocker.args[0]
    assert isinstance(request, LoadRequest)
    assert request.target.rpc_servers == ("10.0.0.7:50052", "10.0.0.8:50052")
    assert request.target.tensor_split == (3.0, 1.0)
    assert request.draft is not None and request.draft.rpc_servers == ()

    # Asked for, the draft goes on the workers too (split by their free memory).
    box.draft_on_workers.setChecked(True)
    with qtbot.waitSignal(panel.load_requested) as blocker:
        panel.load_button.click()
    request = blocker.args[0]
    assert request.draft is not None
    assert request.draft.rpc_servers == ("10.0.0.7:50052", "10.0.0.8:50052")
    assert request.draft.tensor_split == ()

    # Showing a request without workers (the last pair, say) clears the fields.
    panel.select_request(LoadRequest(ModelConfig(models.target), None, "none"))
    assert box.workers_edit.text() == "" and box.split_edit.text() == ""
    assert not box.draft_on_workers.isChecked()


def test_check_shows_each_workers_memory_or_why_it_cannot_be_reached(
    qtbot: QtBot, tmp_path: Path
) -> None:
    require_rpc_build()
    box = RpcWorkersBox()
    qtbot.addWidget(box)
    worker = start_worker(tmp_path)
    missing = f"127.0.0.1:{free_port()}"
    try:
        box.workers_edit.setText(f"{worker.endpoint}, {missing}")
        box.check()
        qtbot.waitUntil(lambda: len(box.statuses()) == 2, timeout=CHECK_TIMEOUT_MS)
    finally:
        worker.kill()
        box.shutdown()
    lines = box.status_label.text().splitlines()
    assert lines[0].startswith(f"✓ {worker.endpoint}: 1 device, ")
    # A CPU worker: ggml reports its free RAM as its total, which is not shown as free.
    assert lines[0].endswith(" GiB (free memory not reported)")
    assert lines[1].startswith(f"✗ RPC worker {missing} refused the connection")
    assert box.check_button.isEnabled()


def test_check_does_not_call_the_loaded_pairs_workers_busy(
    qtbot: QtBot, settings: SettingsStore, models: Folder, tmp_path: Path
) -> None:
    # A worker serves one client at a time, and the loaded pair is that client: a
    # probe would wait behind it. This one accepts and never answers, as it then does.
    held = socket.create_server(("127.0.0.1", 0))
    endpoint = f"127.0.0.1:{held.getsockname()[1]}"
    missing = f"127.0.0.1:{free_port()}"
    panel = make_panel(qtbot, settings, models.path, tmp_path)
    box = panel.rpc_workers
    try:
        assert panel.select_target(models.target)
        panel.set_draft_source(DraftSource.NONE)
        box.workers_edit.setText(f"{endpoint}, {missing}")
        box.workers_edit.editingFinished.emit()
        with qtbot.waitSignal(panel.load_requested):
            panel.load_button.click()
        panel.set_loaded(FakePairInfo(str(models.target), None, backend="CPU + RPC"))
        started = time.monotonic()
        box.check()
        qtbot.waitUntil(lambda: len(box.statuses()) == 2, timeout=CHECK_TIMEOUT_MS)
        took = time.monotonic() - started
        lines = box.status_label.text().splitlines()
        assert lines[0].startswith(f"✓ {endpoint}: in use by the loaded pair")
        assert lines[1].startswith(f"✗ RPC worker {missing} refused the connection")
        assert took < DEFAULT_TIMEOUT_S

        # Unloaded, the worker is a stranger again: one that never answers is busy.
        panel.set_unloaded()
        box.check()
        qtbot.waitUntil(lambda: "Asking" not in box.status_label.text(), timeout=CHECK_TIMEOUT_MS)
        assert (
            box.status_label.text()
            .splitlines()[0]
            .startswith(f"✗ RPC worker {endpoint} accepted the connection but did not answer")
        )
    finally:
        box.shutdown()
        held.close()
