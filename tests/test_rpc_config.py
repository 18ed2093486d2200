"""RPC settings: worker lists, tensor splits, their flags, and how they cross to the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli.bench import build_parser as build_bench_parser
from core.cli.generate_command import build_parser, model_configs
from core.cli.main import main
from core.engine.config import ModelConfig
from core.errors import ConfigError
from core.human_units import GIB
from core.rpc import native
from core.rpc.endpoints import parse_endpoints, parse_tensor_split
from core.rpc.probe import WorkerDevice, WorkerReport
from core.rpc.server import unsafe_host_warning
from core.settings.load_request import LoadRequest
from core.worker import protocol


def test_worker_lists_parse_and_normalise() -> None:
    assert parse_endpoints("10.0.0.2:50052, gpu-box.local:7000") == (
        "10.0.0.2:50052",
        "gpu-box.local:7000",
    )
    assert parse_endpoints(["a:01"]) == ("a:1",)
    assert parse_endpoints("") == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.0.0.2", "needs the form host:port"),
        ("10.0.0.2:http", "port must be a number"),
        ("10.0.0.2:70000", "port must be a number"),
        ("[::1]:50052", "IPv6"),
        ("10.0.0.2:50052;10.0.0.3:50052", "separate workers with commas, not semicolons"),
        ("10.0.0.2:50052; 10.0.0.3:50052", "separate workers with commas, not semicolons"),
        ("a:1,a:1", "listed twice"),
    ],
)
def test_bad_worker_lists_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_endpoints(text)


def test_tensor_splits_take_llama_cpp_forms() -> None:
    assert parse_tensor_split("3,1") == (3.0, 1.0)
    assert parse_tensor_split("3/1") == (3.0, 1.0)
    assert parse_tensor_split([1, 0.5]) == (1.0, 0.5)
    assert parse_tensor_split("") == ()
    for bad, words in (("3,x", "not a number"), ("-1,2", ">= 0"), ("0,0", "above 0")):
        with pytest.raises(ConfigError, match=words):
            parse_tensor_split(bad)


def test_model_config_carries_workers_through_json_to_the_engine_process() -> None:
    config = ModelConfig(
        Path("t.gguf"), rpc_servers=("127.0.0.1:50052", "h:2"), tensor_split=(2.0, 1.0)
    )
    data = json.loads(json.dumps(protocol.model_config_to_dict(config)))
    assert data["rpc_servers"] == ["127.0.0.1:50052", "h:2"]
    assert protocol.model_config_from_dict(data) == config
    request = LoadRequest(config, None, "none")
    assert LoadRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    with pytest.raises(ConfigError, match="host:port"):
        ModelConfig(Path("t.gguf"), rpc_servers=("nocolon",))


def test_generation_flags_put_only_the_target_on_workers(tmp_path: Path) -> None:
    # The command line checks the files exist before it builds configs.
    target_file, draft_file = tmp_path / "t.gguf", tmp_path / "d.gguf"
    target_file.touch()
    draft_file.touch()
    files = ["-m", str(target_file), "-md", str(draft_file)]
    args = build_parser().parse_args([*files, "--rpc", "a:1,b:2", "--tensor-split", "3/1"])
    target, draft = model_configs(args)
    assert target.rpc_servers == ("a:1", "b:2")
    assert target.tensor_split == (3.0, 1.0)
    assert draft is not None and draft.rpc_servers == () and draft.tensor_split == ()
    plain_target, _ = model_configs(build_parser().parse_args(files))
    assert plain_target.rpc_servers == ()
    with pytest.raises(ConfigError, match="host:port"):
        build_parser().parse_args(["--rpc", "nonsense"])
    bench_args = build_bench_parser().parse_args(["--rpc", "a:1", "-ts", "1"])
    assert bench_args.rpc == ("a:1",) and bench_args.tensor_split == (1.0,)


def test_workers_listening_beyond_loopback_are_warned_about() -> None:
    for loopback in ("127.0.0.1", "localhost", "127.0.0.2"):
        assert unsafe_host_warning(loopback, 50052) is None
    warning = unsafe_host_warning("0.0.0.0", 50052)
    assert warning is not None
    assert "no authentication" in warning and "trusted network" in warning


def test_rpc_server_refuses_a_port_out_of_range_as_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for port in ("0", "70000", "http"):
        with pytest.raises(SystemExit) as exited:
            main(["rpc-server", "--port", port])
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert f"argument --port: '{port}' is not a port number from 1 to 65535" in error
        assert "RPC worker" not in error


def test_a_cpu_workers_memory_is_not_shown_as_all_free() -> None:
    # ggml reports a CPU device's free memory as its total.
    cpu = WorkerReport("h:1", "7.0.0", (WorkerDevice(8 * GIB, 8 * GIB),))
    assert cpu.describe() == "1 device, 8.00 GiB (free memory not reported)"
    gpu = WorkerReport("h:1", "7.0.0", (WorkerDevice(5 * GIB, 8 * GIB),))
    assert gpu.describe() == "1 device, 5.00 GiB free of 8.00 GiB"
    both = WorkerReport("h:1", "7.0.0", (WorkerDevice(5 * GIB, 8 * GIB), WorkerDevice(GIB, GIB)))
    assert both.describe() == (
        "2 devices, 5.00 GiB free of 9.00 GiB; free not reported for 1 of them"
    )


def test_a_lost_worker_is_a_json_object_on_stdout_under_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ggml ends the process from its own thread, past the CLI's error handling.
    monkeypatch.setattr(native, "_report_worker_loss", native._report_worker_loss)
    target_file = tmp_path / "t.gguf"
    target_file.touch()
    args = build_parser().parse_args(
        ["-m", str(target_file), "--no-draft", "--rpc", "a:1", "--json"]
    )
    model_configs(args)
    native._report_worker_loss("RPC worker a:1 stopped answering")
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "error": {"type": "RpcWorkerError", "message": "RPC worker a:1 stopped answering"}
    }
    assert captured.err == ""


def test_rpc_draft_puts_the_draft_on_the_same_workers(tmp_path: Path) -> None:
    target_file, draft_file = tmp_path / "t.gguf", tmp_path / "d.gguf"
    target_file.touch()
    draft_file.touch()
    files = ["-m", str(target_file), "-md", str(draft_file)]
    args = build_parser().parse_args([*files, "--rpc", "a:1,b:2", "-ts", "3/1", "--rpc-draft"])
    target, draft = model_configs(args)
    assert target.rpc_servers == ("a:1", "b:2") and target.tensor_split == (3.0, 1.0)
    # The split is the target's; the draft goes by the workers' free memory.
    assert draft is not None and draft.rpc_servers == ("a:1", "b:2") and draft.tensor_split == ()
    with pytest.raises(ConfigError, match=r"--rpc-draft .* --rpc HOST:PORT"):
        model_configs(build_parser().parse_args([*files, "--rpc-draft"]))
    bench_args = build_bench_parser().parse_args(["--rpc", "a:1", "--rpc-draft"])
    assert bench_args.rpc_draft
