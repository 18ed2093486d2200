"""A llama.cpp built without RPC says so, and how to rebuild, when workers are asked for."""

from __future__ import annotations

import pytest

from core.cli.main import main
from core.engine import ModelConfig, SpeculativeEngine
from core.rpc import native
from core.rpc.errors import RpcUnavailableError
from tests.conftest import TinyModels

MESSAGE = "this llama.cpp build has no RPC support; reinstall with CMAKE_ARGS=-DGGML_RPC=on"


@pytest.fixture
def plain_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "rpc_supported", lambda: False)


@pytest.mark.usefixtures("plain_build")
def test_loading_onto_workers_names_the_missing_build_flag(tiny_models: TinyModels) -> None:
    target = ModelConfig(tiny_models.target, n_threads=1, rpc_servers=("127.0.0.1:50052",))
    with pytest.raises(RpcUnavailableError) as caught:
        SpeculativeEngine(target, None)
    assert str(caught.value).startswith(MESSAGE)
    # Without workers the same build loads as before.
    SpeculativeEngine(ModelConfig(tiny_models.target, n_threads=1)).close()


@pytest.mark.usefixtures("plain_build")
def test_the_cli_says_it_in_one_line(
    tiny_models: TinyModels, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rpc-server", "--port", "50999"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {MESSAGE}")
    generate = ["-m", str(tiny_models.target), "--no-draft", "-p", "hi", "-n", "1"]
    assert main([*generate, "--rpc", "127.0.0.1:50999"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {MESSAGE}")
