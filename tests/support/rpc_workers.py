"""Real RPC workers for tests: ``specchat-cli rpc-server`` child processes on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.rpc.errors import RpcWorkerError
from core.rpc.native import rpc_supported
from core.rpc.probe import probe_worker

REPO_ROOT = Path(__file__).resolve().parents[2]
# CI builds llama.cpp with RPC and sets this, so a build without it fails there
# instead of skipping the RPC tests.
REQUIRE_RPC_ENV = "SPECCHAT_REQUIRE_RPC"
START_TIMEOUT_S = 60.0


def require_rpc_build() -> None:
    """Skip (or, where RPC is required, fail) when llama.cpp has no RPC backend."""
    if rpc_supported():
        return
    message = "llama-cpp-python was built without -DGGML_RPC=on"
    if os.environ.get(REQUIRE_RPC_ENV):
        pytest.fail(f"{message}, and {REQUIRE_RPC_ENV} is set")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "core.cli.main", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class Worker:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(folder: Path, threads: int = 1) -> Worker:
    """Start ``specchat-cli rpc-server`` on a free loopback port; wait until it answers."""
    port = free_port()
    log = folder / f"rpc-server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            cli_command("rpc-server", "--port", str(port), "--threads", str(threads)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=REPO_ROOT,
        )
    worker = Worker(f"127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"rpc-server exited with {process.returncode}:\n{worker.output()}")
        with contextlib.suppress(RpcWorkerError):
            probe_worker(worker.endpoint, timeout_s=2.0)
            return worker
        if time.monotonic() > deadline:
            worker.kill()
            raise AssertionError(f"rpc-server did not answer in time:\n{worker.output()}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_workers(folder: Path, count: int, threads: int = 1) -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    try:
        for _ in range(count):
            workers.append(start_worker(folder, threads))
        yield workers
    finally:
        for worker in workers:
            worker.kill()
