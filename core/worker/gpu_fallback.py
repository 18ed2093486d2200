"""Load a pair on the GPU, and on the CPU when the GPU load fails.

A GPU build of llama.cpp can still fail to put a model on the GPU (driver too old,
out of video memory, a device that went away). The pair is then loaded again with
no offloaded layers, and the caller gets a sentence saying why it runs on the CPU.

Where the pair ended up is read from the engine process's answer (PairInfo), not by
listing devices here: that would open a GPU context in the window's process too.
"""

from __future__ import annotations

import dataclasses
import logging

from core.engine.config import ModelConfig
from core.errors import ModelLoadError
from core.worker.client import EngineWorker, PairInfo, ProgressCallback, WorkerCrashedError

logger = logging.getLogger(__name__)

NO_GPU_NOTICE = (
    "GPU layers were asked for, but llama.cpp sees no GPU "
    "(a CPU-only build, or no usable device); running on CPU."
)


def _on_cpu(config: ModelConfig) -> ModelConfig:
    return dataclasses.replace(config, n_gpu_layers=0)


async def load_with_cpu_fallback(
    worker: EngineWorker,
    target: ModelConfig,
    draft: ModelConfig | None,
    on_progress: ProgressCallback | None = None,
) -> tuple[PairInfo, str]:
    """Load ``target`` + ``draft``; returns the pair and a notice ("" when none).

    When offloading was wanted (``n_gpu_layers`` not 0) and the load fails or kills
    the engine process, the pair is loaded again on the CPU; if that works the
    notice quotes the GPU error, and if it fails too the CPU load's error is raised
    (the GPU was not the cause). Layers asked for explicitly on a machine where
    llama.cpp sees no GPU get a notice too. Refusals before loading (missing file,
    vocabulary, memory) and a cancelled load are raised as they are.
    """
    configs = [config for config in (target, draft) if config is not None]
    try:
        pair = await worker.load(target, draft, on_progress)
    except (ModelLoadError, WorkerCrashedError) as gpu_error:
        if all(config.n_gpu_layers == 0 for config in configs):
            raise
        logger.warning("load with GPU layers failed, trying the CPU: %s", gpu_error)
        # A GPU driver can also take the engine process down; a fresh one loads on CPU.
        await worker.start()
        pair = await worker.load(
            _on_cpu(target), None if draft is None else _on_cpu(draft), on_progress
        )
        return pair, f"GPU load failed ({gpu_error}); fell back to CPU."
    asked = any(config.n_gpu_layers > 0 for config in configs)
    return pair, NO_GPU_NOTICE if asked and pair.backend == "CPU" else ""
