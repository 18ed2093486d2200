"""The engine process's wire format and crash wording, without starting a process."""

from __future__ import annotations

import io
import signal

import pytest

from core.engine import DraftSettings, DraftSource, GenerationSettings, ModelConfig
from core.engine.backend import backend_devices, describe_placement
from core.engine.config import SamplingSettings
from core.engine.model import ContextFullError
from core.errors import EngineError, InsufficientMemoryError, VocabMismatchError
from core.worker import protocol
from core.worker.client import describe_exit, last_error_line


def test_frames_round_trip_and_end_cleanly() -> None:
    messages = [{"id": 1, "cmd": "load"}, {"id": 2, "event": {"text": "é ✓ \n"}}]
    stream = io.BytesIO(b"".join(protocol.encode_frame(message) for message in messages))
    assert protocol.read_frame(stream) == messages[0]
    assert protocol.read_frame(stream) == messages[1]
    assert protocol.read_frame(stream) is None


def test_stray_bytes_on_the_channel_fail_loudly() -> None:
    with pytest.raises(protocol.ProtocolError, match="corrupt"):
        protocol.read_frame(io.BytesIO(b"llama_model_loader: loaded meta data"))
    truncated = protocol.encode_frame({"id": 1})[:-2]
    with pytest.raises(protocol.ProtocolError, match="middle"):
        protocol.read_frame(io.BytesIO(truncated))


def test_settings_and_model_configs_cross_unchanged() -> None:
    settings = GenerationSettings(
        n_predict=7,
        sampling=SamplingSettings(temperature=0.0, seed=5, sequence="kt"),
        drafting=DraftSettings(source=DraftSource.NGRAM, n_max=4, p_min=0.5),
        stop_strings=("\n\n",),
    )
    assert protocol.settings_from_dict(protocol.settings_to_dict(settings)) == settings
    config = ModelConfig("/models/a.gguf", n_gpu_layers=3, n_ctx=128, n_threads=1)
    assert protocol.model_config_from_dict(protocol.model_config_to_dict(config)) == config


def test_errors_come_back_as_the_same_class_with_message_and_numbers() -> None:
    error = InsufficientMemoryError(
        "too big", ram_needed_bytes=10, ram_available_bytes=5, vram_free_bytes=None
    )
    rebuilt = protocol.error_from_dict(protocol.error_to_dict(error))
    assert type(rebuilt) is InsufficientMemoryError
    assert str(rebuilt) == "too big"
    assert (rebuilt.ram_needed_bytes, rebuilt.ram_available_bytes) == (10, 5)
    assert rebuilt.vram_free_bytes is None
    for original in (VocabMismatchError("vocab differs"), ContextFullError("full")):
        again = protocol.error_from_dict(protocol.error_to_dict(original))
        assert type(again) is type(original)
        assert str(again) == str(original)


def test_unexpected_host_errors_become_engine_errors_naming_them() -> None:
    rebuilt = protocol.error_from_dict(protocol.error_to_dict(KeyError("prompt")))
    assert type(rebuilt) is EngineError
    assert "KeyError" in str(rebuilt)
    # A class name from outside core is never imported on the client's say-so.
    forged = {"module": "os", "type": "system", "message": "x"}
    assert type(protocol.error_from_dict(forged)) is EngineError


def test_exit_statuses_are_described_in_words() -> None:
    words, code, name = describe_exit(-signal.SIGKILL)
    assert name == "SIGKILL" and code is None and "memory" in words
    assert describe_exit(-signal.SIGABRT)[2] == "SIGABRT"
    assert "illegal instruction" in describe_exit(-signal.SIGILL)[0]
    assert describe_exit(3)[:2] == ("exited unexpectedly with code 3", 3)


def test_the_reason_line_skips_faulthandler_output() -> None:
    lines = [
        "llama.cpp warning: something odd",
        "ggml.c:123: GGML_ASSERT(n_tokens <= n_batch) failed",
        "Fatal Python error: Aborted",
        "",
        "Current thread 0x00007f (most recent call first):",
        '  File "core/engine/model.py", line 10 in append',
    ]
    assert last_error_line(lines) == "ggml.c:123: GGML_ASSERT(n_tokens <= n_batch) failed"
    assert last_error_line(["llama.cpp error: failed to load model"]) == "failed to load model"
    assert last_error_line(["all good"]) == ""


def test_ggmls_device_registry_is_readable() -> None:
    devices = backend_devices()
    cpu = [device for device in devices if device.kind == "cpu"]
    assert cpu and cpu[0].backend == "CPU" and cpu[0].memory_total > 0
    # With no layers offloaded the pair runs on the CPU, named as the machine names it.
    backend, device = describe_placement(0)
    assert backend == "CPU" and device
