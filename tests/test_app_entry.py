"""The app's entry point as the bundles run it: --version, --self-test, the engine
process relaunched from the frozen executable, and windowed starts without std streams."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

from core import app_info
from core.demo_models import DRAFT_FILE_NAME, TARGET_FILE_NAME
from core.engine import DraftSettings, FinishedEvent, GenerationSettings, SamplingSettings
from core.engine.config import ModelConfig
from core.std_streams import LOG_FILE_NAME, ensure_std_streams
from core.worker import EngineWorker, protocol
from core.worker.client import default_worker_command
from gui import app
from gui.theme import apply_theme
from tests.conftest import REPO_ROOT, TinyModels

ENTRY = REPO_ROOT / "packaging" / "specchat_entry.py"


def _specchat(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the bundle's entry script the way the frozen executable runs it."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, str(ENTRY), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def test_version_names_the_app_and_llama_cpp() -> None:
    completed = _specchat("--version")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"SpecChat {app_info.app_version()}\n")
    assert "llama-cpp-python 0.3.36" in completed.stdout


def test_windowed_start_without_std_streams_writes_to_the_log(tmp_path: Path) -> None:
    # As a windowed bundle starts on Windows: sys.stdout and sys.stderr are None.
    script = (
        "import sys; sys.stdout = None; sys.stderr = None; "
        "from gui.app import main; sys.exit(main(['specchat', '--version']))"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=environment, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "SpecChat" in (tmp_path / "logs" / LOG_FILE_NAME).read_text(encoding="utf-8")


def test_std_streams_are_left_alone_when_present() -> None:
    def log_folder() -> Path:
        raise AssertionError("the log folder is asked for only when a stream is missing")

    before = (sys.stdout, sys.stderr)
    assert not ensure_std_streams(log_folder)
    assert (sys.stdout, sys.stderr) == before


def test_missing_std_streams_go_to_devnull_without_a_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert ensure_std_streams(None)
    sys.stdout.write("dropped\n")
    assert sys.stdout is sys.stderr


def test_engine_argument_matches_the_worker_protocol() -> None:
    assert app.ENGINE_ARGUMENT == protocol.HOST_ARGUMENT


def test_frozen_app_relaunches_itself_as_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert default_worker_command() == [sys.executable, protocol.HOST_ARGUMENT]


def test_entry_script_in_engine_mode_serves_a_speculative_answer(tiny_models: TinyModels) -> None:
    # The bundle's command line for its engine: the executable (here: python running the
    # entry script) plus HOST_ARGUMENT. It must speak the protocol, not open a window.
    command = [sys.executable, str(ENTRY), protocol.HOST_ARGUMENT]

    async def scenario() -> FinishedEvent:
        worker = EngineWorker(command=command)
        try:
            await worker.load(
                ModelConfig(tiny_models.target, n_ctx=256, n_threads=1),
                ModelConfig(tiny_models.draft, n_threads=1),
            )
            settings = GenerationSettings(
                n_predict=12,
                sampling=SamplingSettings(temperature=0.0),
                drafting=DraftSettings(n_max=3, adaptive=False),
            )
            events = [event async for event in worker.generate([1, 2, 3], settings)]
        finally:
            await worker.close()
        assert isinstance(events[-1], FinishedEvent)
        return events[-1]

    finished = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert finished.stats.n_predict == 12
    assert finished.stats.n_drafted > 0


def test_self_test_fails_with_a_reason_on_a_broken_pair(tmp_path: Path) -> None:
    (tmp_path / TARGET_FILE_NAME).write_bytes(b"GGUF but not really a model")
    (tmp_path / DRAFT_FILE_NAME).write_bytes(b"not a model either")
    completed = _specchat(
        "--self-test",
        env={"SPECCHAT_DEMO_MODELS": str(tmp_path), "SPECCHAT_HOME": str(tmp_path / "home")},
    )
    assert completed.returncode == 1
    assert "SELF-TEST FAILED: " in completed.stdout
    assert TARGET_FILE_NAME in completed.stdout.split("SELF-TEST FAILED: ", 1)[1]


@pytest.mark.demo_pair
def test_self_test_passes_on_the_demo_pair(demo_pair, tmp_path: Path) -> None:
    completed = _specchat(
        "--self-test",
        env={
            "SPECCHAT_DEMO_MODELS": str(demo_pair.target.parent),
            "SPECCHAT_HOME": str(tmp_path / "home"),
        },
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    output = completed.stdout
    assert "window parts: OK (Qt platform offscreen)" in output
    assert "active backend: CPU" in output
    rpc = "available" if llama_cpp.llama_supports_rpc() else "not in this llama.cpp build"
    assert f"RPC workers: {rpc}" in output
    assert "n_drafted = " in output and "n_drafted = 0\n" not in output
    assert output.rstrip().endswith("SELF-TEST PASSED")


@pytest.mark.parametrize("home_is", ["a file", "a damaged database"])
def test_a_home_that_cannot_be_used_is_a_dialog_not_a_traceback(
    home_is: str, qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    if home_is == "a file":
        home.write_text("not a folder")
    else:
        database = home / "data" / "conversations.sqlite3"
        database.parent.mkdir(parents=True)
        database.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)
    monkeypatch.setenv("SPECCHAT_HOME", str(home))
    said: list[tuple[str, str]] = []
    monkeypatch.setattr(
        app.QMessageBox, "critical", lambda _parent, title, text: said.append((title, text))
    )
    qt_app = app.QApplication.instance()
    assert isinstance(qt_app, app.QApplication)
    quit_on_close = qt_app.quitOnLastWindowClosed()
    palette, sheet = qt_app.palette(), qt_app.styleSheet()
    try:
        assert app.main(["specchat"]) == 1
    finally:
        # Other tests share the QApplication: leave it as it was.
        qt_app.setQuitOnLastWindowClosed(quit_on_close)
        apply_theme(qt_app, "system")
        qt_app.setPalette(palette)
        qt_app.setStyleSheet(sheet)
    [(title, text)] = said
    assert title == "SpecChat cannot start"
    assert str(home) in text
    assert ("is a file, not a folder" if home_is == "a file" else "damaged") in text
