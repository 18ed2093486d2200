"""Load a pair on the GPU, and on the CPU when the GPU load fails.

A GPU build of llama.cpp can still fail to put a model on the GPU (driver too old,
out of video memory, a device that went away). The pair is then loaded again with
no offloaded layers, and the caller gets a sentence saying why it runs on the CPU.
"""

from __future__ import annotations

import dataclasses
import logging

from core.engine.backend import gpu_offload_supported
from core.engine.config import ModelConfig
from core.errors import ModelLoadError
from core.worker.client import EngineWorker, PairInfo, ProgressCallback, WorkerCrashedError

logger = logging.getLogger(__name__)


def _wants_gpu(config: ModelConfig | None) -> bool:
    return config is not None and config.n_gpu_layers != 0


async def load_with_cpu_fallback(
    worker: EngineWorker,
    target: ModelConfig,
    draft: ModelConfig | None,
    on_progress: ProgressCallback | None = None,
) -> tuple[PairInfo, str]:
    """Load ``target`` + ``draft``; returns the pair and a notice ("" when none).

    The notice says the pair runs on the CPU and why: layers were asked for but
    this llama.cpp build has no GPU offload, or the GPU load failed (the error is
    quoted, and the pair is loaded again on the CPU). Other failures (missing file,
    vocabulary mismatch, memory, a cancelled load) would repeat on the CPU and are
    raised as they are.
    """
    if not (_wants_gpu(target) or _wants_gpu(draft)):
        return await worker.load(target, draft, on_progress), ""
    if not gpu_offload_supported():
        pair = await worker.load(target, draft, on_progress)
        # -1 means "offload where a GPU exists": only an explicit layer count deserves a word.
        asked = any(config is not None and config.n_gpu_layers > 0 for config in (target, draft))
        notice = "GPU offload unavailable: this llama.cpp build is CPU-only; running on CPU."
        return pair, notice if asked else ""
    try:
        pair = await worker.load(target, draft, on_progress)
    except (ModelLoadError, WorkerCrashedError) as exc:
        # A GPU driver can also take the engine process down; a fresh one loads on CPU.
        logger.warning("GPU load failed, loading on the CPU instead: %s", exc)
        await worker.start()
        cpu_target = dataclasses.replace(target, n_gpu_layers=0)
        cpu_draft = None if draft is None else dataclasses.replace(draft, n_gpu_layers=0)
        pair = await worker.load(cpu_target, cpu_draft, on_progress)
        return pair, f"GPU load failed ({exc}); fell back to CPU."
    return pair, ""
