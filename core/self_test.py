"""``specchat --self-test``: prove an installation works, end to end, without a screen.

Finds (or builds) the demo pair, starts the real engine process the way the window
does (a frozen bundle relaunches itself in worker mode), generates a few tokens with
a draft model speculating, and prints the readout and where it ran. Every installer
is smoke-tested with it; any failure ends with a reason and a non-zero status.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from core import app_info
from core.engine import (
    ChatMessage,
    DraftSettings,
    DraftSource,
    FinishedEvent,
    GenerationSettings,
    ModelConfig,
    SamplingSettings,
    StepEvent,
    StopReason,
)
from core.errors import SpecChatError

N_TOKENS = 24
PROMPT = "Name three colours of the rainbow."
TIMEOUT_S = 600.0
# Small context, one thread: any machine, busy or not; the point is the path, not speed.
_N_CTX = 512
_N_THREADS = 1


class SelfTestError(SpecChatError):
    """A self-test check failed; the message says which and why."""


async def _generate(write: Callable[[str], None], target: Path, draft: Path) -> None:
    from core.cli.readout import format_readout
    from core.worker import EngineWorker
    from core.worker.client import default_worker_command
    from core.worker.gpu_fallback import load_with_cpu_fallback

    write(f"engine process: {' '.join(default_worker_command())}")
    worker = EngineWorker()
    try:
        started = time.perf_counter()
        await worker.start()
        pair, notice = await load_with_cpu_fallback(
            worker,
            ModelConfig(target, n_ctx=_N_CTX, n_threads=_N_THREADS),
            ModelConfig(draft, n_threads=_N_THREADS),
        )
        write(f"loaded in {time.perf_counter() - started:.1f} s")
        if notice:
            write(notice)
        write(f"active backend: {pair.backend} on {pair.device}")
        write(f"offloaded layers: target {pair.target_gpu_layers}, draft {pair.draft_gpu_layers}")
        prompt = await worker.tokenize_chat([ChatMessage("user", PROMPT)])
        settings = GenerationSettings(
            n_predict=N_TOKENS,
            sampling=SamplingSettings(temperature=0.0),
            drafting=DraftSettings(source=DraftSource.MODEL, n_max=4, adaptive=False),
        )
        pieces: list[str] = []
        finished: FinishedEvent | None = None
        async for event in worker.generate(prompt, settings):
            if isinstance(event, StepEvent):
                pieces.extend(token.text for token in event.tokens)
            elif isinstance(event, FinishedEvent):
                finished = event
    finally:
        await worker.close()
    if finished is None:
        raise SelfTestError("the engine process ended the answer without a finish event")
    if finished.stop_reason in (StopReason.CANCELLED, StopReason.CONTEXT_FULL):
        raise SelfTestError(f"generation stopped early ({finished.stop_reason}): {finished.detail}")
    stats = finished.stats
    write(f"answer: {''.join(pieces).strip()!r}")
    write(format_readout(stats))
    if stats.n_predict == 0:
        raise SelfTestError("the engine generated no tokens")
    if stats.n_drafted == 0:
        raise SelfTestError("speculation was on but the draft model proposed no tokens")


def _demo_pair(write: Callable[[str], None]) -> tuple[Path, Path]:
    from core.demo_models import demo_dir, ensure_demo_pair

    write(f"demo pair: {demo_dir()} (fetched and built if missing)")
    started = time.perf_counter()
    pair = ensure_demo_pair()
    write(f"demo pair ready in {time.perf_counter() - started:.1f} s: {pair.target.name}")
    return pair.target, pair.draft


def _rpc_line() -> str:
    """Whether llama.cpp's RPC client is in this build and its entry point resolves."""
    from core.rpc.errors import RpcUnavailableError
    from core.rpc.native import rpc_function, rpc_supported

    if not rpc_supported():
        return "RPC workers: not in this llama.cpp build (rebuild it with -DGGML_RPC=on)"
    try:
        rpc_function("ggml_backend_rpc_add_server")
    except RpcUnavailableError as exc:
        raise SelfTestError(f"llama.cpp reports RPC support but {exc}") from exc
    return "RPC workers: available (ggml's RPC backend is loaded)"


def run_self_test(write: Callable[[str], None]) -> int:
    """Run every check, writing progress with ``write``; returns the exit status."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        write(f"SpecChat {app_info.app_version()} self-test")
        write(app_info.llama_cpp_build())
        for line in app_info.backend_summary():
            write(line)
        write(_rpc_line())
        target, draft = _demo_pair(write)
        asyncio.run(asyncio.wait_for(_generate(write, target, draft), TIMEOUT_S))
    except (SpecChatError, OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        write(f"SELF-TEST FAILED: {reason}")
        return 1
    write("SELF-TEST PASSED")
    return 0
