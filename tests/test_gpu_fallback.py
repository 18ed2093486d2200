"""Loading with GPU layers asked for, on this CPU-only llama.cpp build: the pair loads
on the CPU and the caller is told why (the window shows it, --self-test prints it)."""

from __future__ import annotations

import asyncio

import pytest

from core.engine.backend import gpu_offload_supported
from core.engine.config import ModelConfig
from core.worker import EngineWorker, PairInfo
from core.worker.gpu_fallback import load_with_cpu_fallback
from tests.conftest import TinyModels

pytestmark = pytest.mark.skipif(
    gpu_offload_supported(), reason="checks the CPU-only build's messages"
)


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


def test_explicit_gpu_layers_on_a_cpu_build_say_so(tiny_models: TinyModels) -> None:
    pair, notice = _load(tiny_models, gpu_layers=20)
    assert pair.backend == "CPU" and pair.target_gpu_layers == 0
    assert notice == "GPU offload unavailable: this llama.cpp build is CPU-only; running on CPU."


def test_automatic_offload_on_a_cpu_build_is_quiet(tiny_models: TinyModels) -> None:
    pair, notice = _load(tiny_models, gpu_layers=-1)
    assert pair.backend == "CPU"
    assert notice == ""
