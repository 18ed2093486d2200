"""``specchat-cli search | download | models | token`` driven through run_library_command."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from core.cli.library_commands import ProgressLine, run_library_command
from core.demo_models import DEMO_DIR_ENV
from core.hub.download import DownloadProgress, DownloadRequest, DownloadState
from core.hub.manager import DownloadTask
from core.paths import models_dir
from tests.support.fake_hub import FakeHub, ServeRule
from tests.support.hub_models import ModelBytes
from tests.support.memory_keyring import MemoryKeyring

pytest_plugins = ["tests.hub_fixtures"]

REPO = "tiny/Tiny-Llama-1M-GGUF"
TARGET = "tiny-llama-1m.Q8_0.gguf"
DRAFT = "tiny-llama-draft.F32.gguf"


@pytest.fixture
def repo(fake_hub: FakeHub, model_bytes: ModelBytes) -> FakeHub:
    fake_hub.add_repo(REPO, {TARGET: model_bytes.target, DRAFT: model_bytes.draft}, downloads=1234)
    fake_hub.add_repo("tiny/Tiny-Other-GGUF", {"other.gguf": b"x"}, downloads=7)
    return fake_hub


def test_search_prints_repos_with_downloads_and_files_with_sizes(
    repo: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_library_command(["search", "tiny"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{REPO}  1.2k downloads"
    assert any(TARGET in line and "2.6 MiB" in line and "Q8_0" in line for line in lines)
    assert "tiny/Tiny-Other-GGUF  7 downloads" in out


def test_download_shows_progress_and_verifies(
    repo: FakeHub, tmp_path: Path, model_bytes: ModelBytes, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_library_command(["download", REPO, TARGET, "--dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / TARGET).read_bytes() == model_bytes.target
    assert "checksum verified" in captured.out
    assert "100.0%" in captured.err
    # Not a terminal: whole lines, no carriage-return redraws.
    assert "\r" not in captured.err


def test_progress_is_redrawn_on_a_terminal_and_a_few_whole_lines_elsewhere() -> None:
    total = 1000
    reports = [DownloadProgress(DownloadState.DOWNLOADING)]  # connecting: nothing known
    reports += [
        DownloadProgress(DownloadState.DOWNLOADING, done, total) for done in range(0, total, 50)
    ]
    reports += [DownloadProgress(DownloadState.VERIFYING, total, total)]
    log = io.StringIO()
    line = ProgressLine(log, terminal=False)
    for progress in reports:
        line.draw(progress)
    line.message("note: the connection dropped; retrying")
    line.end()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    # One line a quarter (0, 25, 50 and 75%) and one for verifying; the note on its own.
    assert [entry.split(" [")[0] for entry in lines] == ["downloading"] * 4 + [
        "verifying",
        "note: the connection dropped; retrying",
    ]
    assert lines[1].split("] ")[1].startswith(" 25.0%")
    terminal = io.StringIO()
    line = ProgressLine(terminal, terminal=True)
    for progress in reports[1:4]:
        line.draw(progress)
    line.end()
    assert terminal.getvalue().count("\r") == 3 and terminal.getvalue().endswith("\n")


def test_ctrl_c_keeps_partial_data_and_running_again_resumes(
    repo: FakeHub,
    model_bytes: ModelBytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    size = len(model_bytes.target)
    repo.rules[TARGET] = ServeRule(hold_after=size // 2)
    original_cancel = DownloadTask.cancel

    def press_ctrl_c_while_held(line: ProgressLine, progress: DownloadProgress) -> None:
        if repo.held.is_set():
            raise KeyboardInterrupt

    def cancel_then_let_the_server_go_on(task: DownloadTask) -> None:
        original_cancel(task)
        repo.release()

    with monkeypatch.context() as patched:
        patched.setattr(ProgressLine, "draw", press_ctrl_c_while_held)
        patched.setattr(DownloadTask, "cancel", cancel_then_let_the_server_go_on)
        assert run_library_command(["download", REPO, TARGET]) == 130
    err = capsys.readouterr().err
    assert "run the same command again to resume" in err
    partial = DownloadRequest(REPO, TARGET, models_dir() / REPO).partial_path
    kept = partial.stat().st_size
    assert 0 < kept < size

    assert repo.wait_until_idle(10)
    served_before = repo.bytes_served[TARGET]
    assert run_library_command(["download", REPO, TARGET]) == 0
    assert "resumed at" in capsys.readouterr().out
    assert repo.bytes_served[TARGET] - served_before == size - kept
    assert (models_dir() / REPO / TARGET).read_bytes() == model_bytes.target


def test_gated_download_without_token_explains_what_to_do(
    fake_hub: FakeHub,
    model_bytes: ModelBytes,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_hub.add_repo("meta/Gated-GGUF", {TARGET: model_bytes.target}, gated=True)
    fake_hub.allowed_tokens.add("hf_env")
    assert run_library_command(["download", "meta/Gated-GGUF", TARGET]) == 1
    err = capsys.readouterr().err
    assert "gated" in err and "HF_TOKEN" in err

    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert run_library_command(["download", "meta/Gated-GGUF", TARGET]) == 0


def test_models_lists_metadata_and_drafts(
    repo: FakeHub, tmp_path: Path, model_bytes: ModelBytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_library_command(["download", REPO, TARGET]) == 0
    assert run_library_command(["download", REPO, DRAFT]) == 0
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "foreign.gguf").write_bytes(model_bytes.foreign)
    (extra / "broken.gguf").write_bytes(b"nope")
    capsys.readouterr()

    assert run_library_command(["models", "--folder", str(extra)]) == 0
    out = capsys.readouterr().out
    assert "tiny-llama-1  llama" in out
    assert "ctx 512  chat template: yes  vocab " in out
    # Drafts by file name: quantisations of one model share the name in their metadata.
    assert f"draft: {DRAFT}  same vocabulary" in out
    assert "not a draft: foreign.gguf  token 300 differs" in out
    assert "BROKEN" in out and "broken.gguf" in out


def test_models_with_nothing_found_says_where_it_looked_and_where_the_demo_pair_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hf_cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    demo = tmp_path / "demo-models"
    monkeypatch.setenv(DEMO_DIR_ENV, str(demo))
    assert run_library_command(["models"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        f"no GGUF models found in the models folder {models_dir()} (downloads go there) "
        f"or the Hugging Face cache {hf_cache}"
    )
    # The command line builds the demo pair outside the library: say where it is.
    demo.mkdir()
    (demo / "SmolLM2-135M-Instruct.F32.gguf").write_bytes(b"")
    assert run_library_command(["models"]) == 0
    out = capsys.readouterr().out
    assert f"the demo pair is in {demo} (list it with --folder {demo})" in out


def test_token_commands_use_the_keyring(
    memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_library_command(["token", "status"]) == 0
    assert "no token" in capsys.readouterr().out
    assert run_library_command(["token", "set", "hf_abcdefghijkl"]) == 0
    assert memory_keyring.secrets[("specchat", "huggingface-token")] == "hf_abcdefghijkl"
    assert run_library_command(["token", "status"]) == 0
    out = capsys.readouterr().out
    assert "hf_ab…kl from the OS keyring" in out and "hf_abcdefghijkl" not in out
    assert run_library_command(["token", "clear"]) == 0
    assert "token removed" in capsys.readouterr().out
