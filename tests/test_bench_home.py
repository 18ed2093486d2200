"""A benchmark killed with SIGTERM still removes its home (tests/support/bench_home.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_BENCHMARK = f"""
import sys, time
sys.path.insert(0, {str(REPO_ROOT)!r})
from tests.support.bench_home import temporary_home
home = temporary_home("specchat-home-test-")
(__import__("pathlib").Path(home.name) / "demo.gguf").write_bytes(bytes(1 << 20))
print(home.name, flush=True)
try:
    time.sleep(60)
finally:
    print("finally ran", flush=True)
"""


def test_a_benchmark_stopped_with_sigterm_runs_its_finally_blocks_and_removes_its_home() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _BENCHMARK], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    home = Path(process.stdout.readline().strip())
    assert (home / "demo.gguf").stat().st_size == 1 << 20
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert process.stdout.read() == "finally ran\n"
    assert not home.exists()
