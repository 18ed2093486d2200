"""The demo target spread over real RPC workers (``specchat-cli rpc-server`` children on
loopback ports): same greedy answers as on one machine, and clear words when a worker
is missing at load or dies in the middle of an answer."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.demo_models import DemoPair
from core.engine import ChatMessage, ModelConfig, SpeculativeEngine, collect
from core.engine.backend import backend_devices
from core.errors import ConfigError
from core.rpc.errors import RpcWorkerError
from core.rpc.native import WORKER_LOST_EXIT
from core.rpc.probe import probe_worker, probe_workers
from core.worker import EngineWorker, WorkerCrashedError
from core.worker.gpu_fallback import load_with_cpu_fallback
from tests.support.engine_settings import greedy_settings
from tests.support.rpc_workers import (
    REPO_ROOT,
    Worker,
    child_env,
    cli_command,
    free_port,
    require_rpc_build,
    running_workers,
    start_worker,
)

pytestmark = pytest.mark.demo_pair

PROMPT = "Write a short poem about the sea."
LONG_PROMPT = "Count from 1 to 1000, separated by commas: 1, 2, 3,"
N_TOKENS = 40
# Enough of the answer to tell that a reload works (greedy: a prefix of the full one).
SHORT = 8
# Layers of the demo target (SmolLM2-135M has 30) kept on this CPU when one worker
# takes the rest.
LOCAL_LAYERS = 15
# Killing a worker must end a running answer within this long, never hang it.
LOSS_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    require_rpc_build()
    with running_workers(tmp_path_factory.mktemp("rpc-workers"), 2) as started:
        yield started


def target_config(demo_pair: DemoPair, **options: Any) -> ModelConfig:
    return ModelConfig(demo_pair.target, n_ctx=512, n_threads=2, **options)


@pytest.fixture(scope="module")
def local_answer(demo_pair: DemoPair) -> tuple[list[int], list[int]]:
    """The prompt and the plain greedy answer with everything on this machine."""
    with SpeculativeEngine(target_config(demo_pair)) as engine:
        prompt = engine.tokenize_chat([ChatMessage("user", PROMPT)])
        answer = collect(engine.generate(prompt, greedy_settings(N_TOKENS, source="none")))
    assert len(answer.token_ids) == N_TOKENS
    return prompt, answer.token_ids


def connections(worker: Worker) -> int:
    return worker.output().count("Accepted client connection")


def test_workers_report_their_memory(workers: list[Worker]) -> None:
    statuses = probe_workers([worker.endpoint for worker in workers])
    for status in statuses:
        assert status.report is not None, status.error
        assert status.report.total_bytes > 0
        assert 0 < status.report.free_bytes <= status.report.total_bytes


def test_target_split_over_two_workers_answers_as_on_one_machine(
    workers: list[Worker], demo_pair: DemoPair, local_answer: tuple[list[int], list[int]]
) -> None:
    prompt, expected = local_answer
    endpoints = tuple(worker.endpoint for worker in workers)
    before = [connections(worker) for worker in workers]
    target = target_config(demo_pair, rpc_servers=endpoints, tensor_split=(1.0, 1.0))
    draft = ModelConfig(demo_pair.draft, n_threads=2)
    with SpeculativeEngine(target, draft) as engine:
        # Both workers were connected to by the load (each probe counts one too).
        assert all(connections(w) >= n + 2 for w, n in zip(workers, before, strict=True))
        plain = collect(engine.generate(prompt, greedy_settings(N_TOKENS, source="none")))
        speculative = collect(engine.generate(prompt, greedy_settings(N_TOKENS, n_max=8)))
        # ggml's registry lists the workers' devices; reading it must not touch them.
        rpc_devices = [device for device in backend_devices() if device.backend == "RPC"]
        assert {device.description for device in rpc_devices} >= set(endpoints)
    assert plain.token_ids == expected
    assert speculative.token_ids == expected
    assert speculative.stats.acceptance > 0


def test_target_split_between_this_machine_and_one_worker(
    workers: list[Worker], demo_pair: DemoPair, local_answer: tuple[list[int], list[int]]
) -> None:
    prompt, expected = local_answer
    target = target_config(demo_pair, n_gpu_layers=LOCAL_LAYERS, rpc_servers=(workers[0].endpoint,))
    with SpeculativeEngine(target, ModelConfig(demo_pair.draft, n_threads=2)) as engine:
        answer = collect(engine.generate(prompt, greedy_settings(N_TOKENS, n_max=8)))
    assert answer.token_ids == expected


def test_draft_on_the_targets_workers_answers_as_on_one_machine(
    workers: list[Worker], demo_pair: DemoPair, local_answer: tuple[list[int], list[int]]
) -> None:
    prompt, expected = local_answer
    endpoints = tuple(worker.endpoint for worker in workers)
    target = target_config(demo_pair, rpc_servers=endpoints)
    # What --rpc-draft and "Draft on the workers too" give the draft: the target's
    # workers, which the target's load is already connected to.
    draft = ModelConfig(demo_pair.draft, n_threads=2, rpc_servers=endpoints)
    with SpeculativeEngine(target, draft) as engine:
        answer = collect(engine.generate(prompt, greedy_settings(N_TOKENS, n_max=8)))
    assert answer.token_ids == expected
    assert answer.stats.acceptance > 0


def test_a_draft_moved_onto_the_loaded_targets_worker_loads(
    workers: list[Worker],
    demo_pair: DemoPair,
    local_answer: tuple[list[int], list[int]],
) -> None:
    # The window's "Apply draft": a new draft beside a target that holds the worker.
    prompt, expected = local_answer
    target = target_config(demo_pair, rpc_servers=(workers[0].endpoint,))
    draft = ModelConfig(demo_pair.draft, n_threads=2, rpc_servers=(workers[0].endpoint,))

    async def scenario(engine: EngineWorker) -> list[int]:
        await engine.load(target, ModelConfig(demo_pair.draft, n_threads=2))
        await engine.set_draft(draft)
        tokens: list[int] = []
        async for event in engine.generate(prompt, greedy_settings(SHORT, n_max=4)):
            tokens.extend(token.id for token in getattr(event, "tokens", ()))
        return tokens

    async def main() -> list[int]:
        engine = EngineWorker()
        try:
            return await asyncio.wait_for(scenario(engine), 4 * LOSS_DEADLINE_S)
        finally:
            await engine.close()

    assert asyncio.run(main()) == expected[:SHORT]


def test_an_unreachable_worker_is_named_at_load_and_the_target_loads_without_it(
    workers: list[Worker], demo_pair: DemoPair, local_answer: tuple[list[int], list[int]]
) -> None:
    missing = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(RpcWorkerError, match="refused the connection") as caught:
        SpeculativeEngine(target_config(demo_pair, rpc_servers=(workers[0].endpoint, missing)))
    assert missing in str(caught.value)
    assert time.monotonic() - started < 30
    prompt, expected = local_answer
    # Reloading without it works, and a worker registered earlier is left alone.
    with SpeculativeEngine(target_config(demo_pair)) as engine:
        answer = collect(engine.generate(prompt, greedy_settings(SHORT, source="none")))
    assert answer.token_ids == expected[:SHORT]


def test_the_windows_load_does_not_retry_on_the_cpu_when_a_worker_is_unreachable(
    demo_pair: DemoPair, caplog: pytest.LogCaptureFixture
) -> None:
    require_rpc_build()
    missing = f"127.0.0.1:{free_port()}"
    # The window loads through the GPU fallback: a load that fails with GPU layers
    # is tried again on the CPU. The same worker would be asked again, and a busy
    # one would make the user wait twice for the same answer.
    target = target_config(demo_pair, rpc_servers=(missing,))

    async def scenario() -> None:
        engine = EngineWorker()
        try:
            await asyncio.wait_for(load_with_cpu_fallback(engine, target, None), 60)
        finally:
            await engine.close()

    with pytest.raises(RpcWorkerError, match="refused the connection") as caught:
        asyncio.run(scenario())
    assert caught.value.endpoint == missing
    assert "trying the CPU" not in caplog.text


def test_more_split_proportions_than_devices_is_refused(
    workers: list[Worker], demo_pair: DemoPair
) -> None:
    target = target_config(
        demo_pair, rpc_servers=(workers[0].endpoint,), tensor_split=(1.0, 1.0, 1.0)
    )
    # One device, one worker: counted in the singular ("1 devices" read as a slip).
    counted = r"3 proportions but .* has 1 device to split over \(1 RPC worker,"
    with pytest.raises(ConfigError, match=counted):
        SpeculativeEngine(target)


def test_a_worker_killed_mid_answer_ends_the_answer_with_its_name(
    workers: list[Worker], demo_pair: DemoPair, tmp_path: Path
) -> None:
    doomed = start_worker(tmp_path)
    try:
        answer_file = tmp_path / "answer.txt"
        with answer_file.open("wb") as answer_sink:
            cli = subprocess.Popen(
                cli_command(
                    *("-m", str(demo_pair.target), "--no-draft", "--temp", "0", "-n", "2000"),
                    *("-p", LONG_PROMPT),
                    *("--rpc", doomed.endpoint, "-t", "2"),
                ),
                stdout=answer_sink,
                stderr=subprocess.PIPE,
                env=child_env(),
                cwd=REPO_ROOT,
            )
        try:
            deadline = time.monotonic() + LOSS_DEADLINE_S
            while answer_file.stat().st_size < 20 and cli.poll() is None:
                assert time.monotonic() < deadline, "the answer never started"
                time.sleep(0.1)
            assert cli.poll() is None, cli.communicate()[1].decode()
            doomed.kill()
            killed = time.monotonic()
            _, errors = cli.communicate(timeout=LOSS_DEADLINE_S)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
        assert time.monotonic() - killed < LOSS_DEADLINE_S
        message = errors.decode(errors="replace")
        assert cli.returncode == WORKER_LOST_EXIT, message
        # On a line of its own, though the answer on stdout stopped mid-line.
        assert f"\nerror: RPC worker {doomed.endpoint} stopped answering" in message
        assert "load the model without it" in message
    finally:
        doomed.kill()


def test_a_worker_lost_mid_answer_stops_only_the_engine_process_which_reloads_without_it(
    workers: list[Worker],
    demo_pair: DemoPair,
    local_answer: tuple[list[int], list[int]],
    tmp_path: Path,
) -> None:
    doomed = start_worker(tmp_path)
    prompt, expected = local_answer

    async def scenario(engine: EngineWorker) -> tuple[WorkerCrashedError, list[int]]:
        target = target_config(demo_pair, rpc_servers=(doomed.endpoint,))
        info = await engine.load(target, ModelConfig(demo_pair.draft, n_threads=2))
        # The worker's memory, read through ggml's registry on the model's connection:
        # a CPU worker reports its free RAM as its total, so only the size is shown.
        assert f"RPC {doomed.endpoint} (" in info.device
        assert "GiB (free memory not reported)" in info.device and " free of " not in info.device
        assert info.backend == "CPU + RPC"
        long_prompt = await engine.tokenize(LONG_PROMPT)
        with pytest.raises(WorkerCrashedError) as crash:
            async for _event in engine.generate(long_prompt, greedy_settings(2000, n_max=8)):
                doomed.kill()
        # The user reloads without the worker and goes on.
        await engine.load(target_config(demo_pair), None)
        tokens: list[int] = []
        async for event in engine.generate(prompt, greedy_settings(SHORT, source="none")):
            tokens.extend(token.id for token in getattr(event, "tokens", ()))
        return crash.value, tokens

    async def main() -> tuple[WorkerCrashedError, list[int]]:
        engine = EngineWorker()
        try:
            return await asyncio.wait_for(scenario(engine), 4 * LOSS_DEADLINE_S)
        finally:
            await engine.close()

    try:
        error, tokens = asyncio.run(main())
    finally:
        doomed.kill()
    assert f"RPC worker {doomed.endpoint} stopped answering" in str(error)
    assert error.exit_code == WORKER_LOST_EXIT
    assert tokens == expected[:SHORT]


def test_rpc_server_refuses_a_port_in_use_in_one_line(workers: list[Worker]) -> None:
    port = workers[0].endpoint.rpartition(":")[2]
    done = subprocess.run(
        cli_command("rpc-server", "--port", port),
        capture_output=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; pick another --port"
    )


@contextmanager
def listening_rpc_server(host: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``specchat-cli rpc-server`` on ``host:port`` with its stderr in ``log``, once it
    says it listens; killed afterwards."""
    with log.open("wb") as sink:
        server = subprocess.Popen(
            cli_command("rpc-server", "--host", host, "--port", str(port)),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=child_env(),
            cwd=REPO_ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield server
    finally:
        server.kill()
        server.wait()


def test_rpc_server_beyond_loopback_warns_that_the_protocol_is_unauthenticated(
    tmp_path: Path,
) -> None:
    require_rpc_build()
    log = tmp_path / "open-worker.log"
    with listening_rpc_server("0.0.0.0", free_port(), log):
        pass
    text = " ".join(log.read_text().split())
    assert "WARNING: this RPC worker listens on 0.0.0.0" in text
    assert "no authentication" in text and "trusted network only" in text


def test_rpc_server_on_localhost_listens_there_without_a_warning(tmp_path: Path) -> None:
    require_rpc_build()
    port = free_port()
    log = tmp_path / "localhost-worker.log"
    with listening_rpc_server("localhost", port, log) as server:
        # ggml's server takes only IPv4 literals: the name must have been resolved.
        time.sleep(1.0)
        assert server.poll() is None, log.read_text()
        report = probe_worker(f"localhost:{port}")
    assert report.total_bytes > 0
    text = log.read_text()
    assert "WARNING" not in text
    assert f"RPC worker listening on localhost:{port}" in text
