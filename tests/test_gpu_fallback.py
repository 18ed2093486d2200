"""Loading with GPU layers asked for where llama.cpp sees no GPU: the pair loads on the
CPU and the caller is told why (the window shows it, --self-test prints it)."""

from __future__ import annotations

import asyncio

import pytest

from core.engine.backend import gpu_devices
from core.engine.config import ModelConfig
from core.errors import SpecChatError
from core.worker import EngineWorker, PairInfo
from core.worker.gpu_fallback import NO_GPU_NOTICE, load_with_cpu_fallback
from tests.conftest import TinyModels

pytestmark = pytest.mark.skipif(bool(gpu_devices()), reason="checks the no-GPU messages")


def _load(models: TinyModels, gpu_layers: int) -> tuple[PairInfo, str]:
    async def scenario() -> tuple[PairInfo, str]:
        worker = EngineWorker()
        try:
            return await load_with_cpu_fallback(
                worker,
                ModelConfig(models.target, n_ctx=256, n_threads=1, n_gpu_layers=gpu_layers),
                ModelConfig(models.draft, n_threads=1, n_gpu_layers=gpu_layers),
            )
        finally:
            await worker.close()

    return asyncio.run(asyncio.wait_for(scenario(), 60))


def test_explicit_gpu_layers_without_a_gpu_say_so(tiny_models: TinyModels) -> None:
    pair, notice = _load(tiny_models, gpu_layers=20)
    assert pair.backend == "CPU"
    assert notice == NO_GPU_NOTICE


def test_automatic_offload_without_a_gpu_is_quiet(tiny_models: TinyModels) -> None:
    pair, notice = _load(tiny_models, gpu_layers=-1)
    assert pair.backend == "CPU"
    assert notice == ""


def test_a_failed_load_that_also_fails_on_the_cpu_raises_the_cpu_error(
    tiny_models: TinyModels, tmp_path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_models.target.read_bytes()[:4096])  # a truncated model

    async def scenario() -> None:
        worker = EngineWorker()
        try:
            await load_with_cpu_fallback(worker, ModelConfig(broken, n_threads=1), None)
        finally:
            await worker.close()

    with pytest.raises(SpecChatError, match=r"broken\.gguf"):
        asyncio.run(asyncio.wait_for(scenario(), 60))
