"""``specchat-cli serve``: safe binding, and greedy answers equal to the command line's."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from core.cli.generate_command import run_generate
from core.cli.main import main
from core.demo_models import DemoPair
from core.errors import ConfigError
from core.server.auth import API_KEY_ENV, check_bind, key_matches
from tests.conftest import TinyModels

REPO_ROOT = Path(__file__).resolve().parent.parent
DRAFT_FLAGS = ["--draft-max", "4", "--draft-min", "0", "--no-adaptive-draft"]
PROMPT = "Write one sentence about the sea."


def test_refuses_to_listen_beyond_this_machine_without_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    # Refused before any model is loaded (no -m: the demo pair is never touched).
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    error = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without an API key" in error
    assert "--api-key" in error and API_KEY_ENV in error
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "a-key")
    with pytest.raises(ConfigError):
        check_bind("192.168.1.5", "")


def test_serve_help_gives_the_defaults_the_readme_promises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["serve", "--help"])
    assert leaving.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "address to listen on (default 127.0.0.1: this machine only)" in text
    assert "port (default 8080; 0: any free one" in text
    assert "(default 8); more get 503" in text


def test_key_check() -> None:
    assert key_matches(None, None)
    assert key_matches("Bearer k1", "k1")
    assert key_matches("bearer  k1 ", "k1")
    assert not key_matches("Bearer k2", "k1")
    assert not key_matches("k1", "k1")
    assert not key_matches(None, "k1")


@pytest.fixture(scope="module")
def served_demo(demo_pair: DemoPair) -> Iterator[str]:
    """``specchat-cli serve`` on the demo pair, greedy, on a free port."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        API_KEY_ENV: "env-key",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli.main",
            "serve",
            "-m",
            str(demo_pair.target),
            "-md",
            str(demo_pair.draft),
            "-c",
            "1024",
            "--port",
            "0",
            "--temp",
            "0",
            *DRAFT_FLAGS,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 240
        url = ""
        while not url and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            found = re.search(r"on (http://\S+/v1)", line)
            url = found.group(1) if found else ""
        assert url, "the server did not start"
        # Keep reading its request log so a full pipe never blocks it.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.demo_pair
def test_greedy_answers_equal_the_command_line(served_demo: str, demo_pair: DemoPair) -> None:
    # The key came from the environment variable.
    served = openai.OpenAI(base_url=served_demo, api_key="env-key", max_retries=0, timeout=120)
    answer = served.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": PROMPT}], max_tokens=48
    )
    out = io.StringIO()
    assert (
        run_generate(
            [
                "-m",
                str(demo_pair.target),
                "-md",
                str(demo_pair.draft),
                "-c",
                "1024",
                "--chat",
                "-p",
                PROMPT,
                "--temp",
                "0",
                "-n",
                "48",
                "--json",
                *DRAFT_FLAGS,
            ],
            out=out,
            err=io.StringIO(),
        )
        == 0
    )
    expected = json.loads(out.getvalue())
    assert answer.choices[0].message.content == expected["text"]
    assert answer.usage is not None
    assert answer.usage.completion_tokens == len(expected["tokens"])
    completion = served.completions.create(model="demo", prompt="The sea is", max_tokens=16)
    assert completion.choices[0].text
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=served_demo, api_key="wrong", max_retries=0).models.list()


def test_a_port_out_of_range_is_a_usage_error_before_loading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No -m: the demo pair would be built if anything were loaded.
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_an_address_not_of_this_machine_is_said_before_loading(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    argv = ["serve", "-m", str(tiny_models.target), "-md", str(tiny_models.draft)]
    argv += ["--host", "999.1.1.1", "--api-key", "k"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "cannot listen on 999.1.1.1: not an address of this machine" in error
    assert "loading" not in error and "choose another port" not in error


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_loads_the_pair_again_after_the_engine_process_dies(
    tiny_models: TinyModels,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "core.cli.main", "serve", "-m", str(tiny_models.target)]
    command += ["-md", str(tiny_models.draft), "-c", "512", "--port", "0", "--temp", "0"]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        url = ""
        while not url:
            line = process.stderr.readline()
            assert line, "the server did not start"
            lines.append(line)
            found = re.search(r"on (http://\S+/v1)", line)
            url = found.group(1) if found else ""
        threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True).start()
        (engine,) = _children(process.pid)
        os.kill(engine, signal.SIGKILL)
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=30)
        deadline = time.monotonic() + 120
        while True:  # 503 "reloading" until the new engine process has the pair
            try:
                answer = client.completions.create(model="any", prompt="Once", max_tokens=4)
                break
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and "reloading" in exc.message, exc.message
                assert time.monotonic() < deadline, "the pair was not loaded again"
                time.sleep(0.2)
        assert answer.usage is not None and answer.usage.completion_tokens == 4
        assert _children(process.pid) != [engine]
        log = "".join(lines)
        assert "SIGKILL" in log and "Loading the pair again" in log
        assert "the pair is loaded again" in log
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_blank_or_padded_api_key_is_refused() -> None:
    for key in ("   ", " key"):
        with pytest.raises(ConfigError, match="blank or starts or ends with spaces"):
            check_bind("0.0.0.0", key)
    check_bind("127.0.0.1", "")  # no key on this machine only
