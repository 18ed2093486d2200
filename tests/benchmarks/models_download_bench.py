"""Does a full-speed download stall the window? A benchmark script, not a test.

The Models page downloads a file from the local fake Hub as fast as the loopback
allows, while a precise 10 ms QTimer heartbeat on the GUI thread records how late
each beat fires and how much CPU the GUI thread spent between beats. Idle rounds
(the page open, nothing downloading) alternate with download rounds, so both see
the same state of a shared machine; compare the two, not the absolute numbers.

The goal (issue 7): no stall over 50 ms while a download runs. The fake Hub
runs in a child process, as a real server would: in this process its slicing and
hashing of the file's bytes would hold the interpreter lock and count as stalls.

Usage::

    python tests/benchmarks/models_download_bench.py [--size-mib 64] [--rounds 2]

Runs offscreen unless QT_QPA_PLATFORM says otherwise, in a temporary SPECCHAT_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.bench_home import temporary_home

_HOME = temporary_home("specchat-models-bench-")
os.environ["HF_HUB_CACHE"] = str(Path(_HOME.name) / "hf")

# The same heartbeat as the window benchmark, so the numbers compare.
from tests.support.gui_heartbeat import Heartbeat, Stalls  # noqa: E402

REPO = "bench/Big-GGUF"


def take(heartbeat: Heartbeat) -> Stalls:
    """The beats since the last call; the heartbeat starts a new record."""
    stalls, heartbeat.stalls = heartbeat.stalls, Stalls()
    return stalls


def file_names(rounds: int) -> list[str]:
    return [f"big-{i}.Q4_K_M.gguf" for i in range(rounds)]


def serve(size_mib: int, rounds: int) -> None:
    """The child process: a fake Hub with the files; prints its URL, serves until
    its stdin closes."""
    from tests.support.fake_hub import FakeHub

    payload = os.urandom(size_mib << 20)
    with FakeHub() as hub:
        hub.add_repo(REPO, {name: payload for name in file_names(rounds)})
        print(hub.url, flush=True)
        sys.stdin.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.size_mib, args.rounds)
        return 0

    import qasync
    from PySide6.QtWidgets import QApplication

    from core.hub.jobs import JobState
    from gui.models.models_page import ModelsPage

    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app, already_running=False)
    asyncio.set_event_loop(loop)
    names = file_names(args.rounds)
    server_args = ["--size-mib", str(args.size_mib), "--rounds", str(args.rounds)]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *server_args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip()
    page = ModelsPage(endpoint=url, memory_budget=lambda: 64 << 30)
    page.resize(1200, 760)
    page.show()
    heartbeat = Heartbeat()

    async def wait(condition: Callable[[], bool], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark step did not finish")
            await asyncio.sleep(0.01)

    async def bench() -> list[str]:
        lines: list[str] = []
        await wait(lambda: page.downloads is not None)
        downloads = page.downloads
        assert downloads is not None
        page.open_repo(REPO)
        await wait(lambda: len(page.repo_view.choices()) == len(names))
        for round_index, name in enumerate(names):
            heartbeat.arm(True)
            take(heartbeat)
            await asyncio.sleep(3.0)
            lines.append(f"round {round_index + 1} idle:     " + take(heartbeat).summary())
            page.repo_view.select_choice(name.removesuffix(".gguf"))
            started = time.perf_counter()
            page.repo_view.download_button.click()
            jobs = round_index + 1
            await wait(lambda jobs=jobs: len(downloads.snapshots()) == jobs)
            await wait(lambda: downloads.snapshots()[-1].state.finished)
            elapsed = time.perf_counter() - started
            state = downloads.snapshots()[-1].state
            assert state is JobState.DONE, downloads.snapshots()[-1].error
            lines.append(
                f"round {round_index + 1} download: {take(heartbeat).summary()}; "
                f"{args.size_mib / elapsed:.0f} MiB/s"
            )
            heartbeat.arm(False)
        return lines

    try:
        lines = loop.run_until_complete(bench())
    finally:
        loop.run_until_complete(page.shutdown())
        server.stdin.close()
        server.wait(30)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
