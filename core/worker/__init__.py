"""The engine in its own process, and the asyncio client that drives it.

A crash in native code (a failed GGML_ASSERT, an illegal instruction, running out
of memory) then ends only that process; the window keeps the conversation and says
what happened.
"""

from core.worker.client import EngineWorker, PairInfo, WorkerCrashedError

__all__ = ["EngineWorker", "PairInfo", "WorkerCrashedError"]
