"""The engine process: owns one SpeculativeEngine and serves the protocol on pipes.

Run as ``python -m core.worker.host`` (or through ``run_host()`` from a frozen
app's own entry point). Commands arrive on stdin; replies leave on what was fd 1
when the process started. Native code (llama.cpp, ggml) may print to fd 1 at any
time, so before anything else fd 1 is pointed at stderr and the protocol keeps a
private duplicate of the original pipe.

A reader thread takes commands off the pipe. ``cancel`` is handled on that thread
at once (it only sets flags the running command polls); every other command goes to
the main thread, which runs them one at a time. That keeps all llama.cpp calls on
one thread, as the engine requires.
"""

from __future__ import annotations

import ctypes
import dataclasses
import faulthandler
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from core.engine import SpeculativeEngine, event_to_dict
from core.engine.backend import (
    add_problem_listener,
    describe_placement,
    ensure_backend,
    gpu_devices,
    gpu_offload_supported,
    load_ggml_library,
)
from core.engine.config import DEFAULT_CONTEXT, ModelConfig
from core.engine.model import LoadedModel
from core.engine.placement import offloaded_layers, pair_placement
from core.errors import ConfigError, InsufficientMemoryError, SpecChatError, VocabMismatchError
from core.gguf_meta import GgufMetadata, read_gguf_metadata
from core.library.memory import (
    ModelMemory,
    SystemMemory,
    check_memory_fit,
    detect_free_vram_bytes,
    estimate_model_memory,
    read_system_memory,
)
from core.rpc.native import loaded_worker_memory
from core.rpc.probe import WorkerDevice, describe_memory
from core.tune.cost_curve import measure_pair_curve
from core.vocab import check_vocab_compatibility
from core.worker import protocol
from core.worker.protocol import ProtocolError, encode_frame, error_to_dict, read_frame

logger = logging.getLogger(__name__)

# Progress messages are sent when the fraction moved at least this much.
PROGRESS_STEP = 0.01

Handler = Callable[[int, dict[str, Any]], Any]


class Host:
    """Serves commands from ``commands_in`` and writes replies to ``replies_out``."""

    def __init__(self, commands_in: BinaryIO, replies_out: BinaryIO) -> None:
        self._in = commands_in
        self._out = replies_out
        self._write_lock = threading.Lock()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._engine: SpeculativeEngine | None = None
        # Guards _current_id, _cancelled_early and _engine as the reader thread sees them.
        self._state_lock = threading.Lock()
        self._current_id: int | None = None
        self._current_cancelled = threading.Event()
        self._cancelled_early: set[int] = set()
        self._closing = False
        self._target_loads = 0
        self._draft_loads = 0
        self._test_hooks = os.environ.get(protocol.TEST_HOOKS_ENV) == "1"
        self._handlers: dict[str, Handler] = {
            protocol.LOAD: self._load,
            protocol.SET_DRAFT: self._set_draft,
            protocol.UNLOAD: self._unload,
            protocol.TOKENIZE: self._tokenize,
            protocol.TOKENIZE_CHAT: self._tokenize_chat,
            protocol.GENERATE: self._generate,
            protocol.COST_CURVE: self._cost_curve,
            protocol.STATE: self._state,
            protocol.DEBUG: self._debug,
        }

    # -- plumbing -----------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        frame = encode_frame(message)
        with self._write_lock:
            self._out.write(frame)
            self._out.flush()

    def serve(self) -> None:
        """Answer commands until the client closes the pipe."""
        reader = threading.Thread(target=self._read_commands, name="commands", daemon=True)
        reader.start()
        self.send({"ready": True, "pid": os.getpid()})
        while True:
            command = self._queue.get()
            if command is None:
                break
            if not self._closing:
                self._run(command)
        self._close_engine()

    def _read_commands(self) -> None:
        try:
            while True:
                message = read_frame(self._in)
                if message is None:
                    break
                if message.get("cmd") == protocol.CANCEL:
                    self._cancel(message.get("call"))
                    self.send({"id": message.get("id"), "ok": True, "result": None})
                else:
                    self._queue.put(message)
        except (ProtocolError, OSError) as exc:
            logger.error("engine process stops reading commands: %s", exc)
        # The client closed the pipe (or died): stop what runs, then leave.
        self._closing = True
        self._cancel(None)
        self._queue.put(None)

    def _cancel(self, call_id: int | None) -> None:
        with self._state_lock:
            if call_id is None or call_id == self._current_id:
                self._current_cancelled.set()
                if self._engine is not None:
                    self._engine.cancel()
            else:
                # Not started yet (queued behind another command): cancel it on start.
                self._cancelled_early.add(call_id)

    def _run(self, command: dict[str, Any]) -> None:
        call_id = int(command.get("id", -1))
        with self._state_lock:
            self._current_id = call_id
            self._current_cancelled.clear()
            if call_id in self._cancelled_early:
                self._current_cancelled.set()
            # Ids only grow, so cancels of older calls can no longer matter.
            self._cancelled_early = {i for i in self._cancelled_early if i > call_id}
        try:
            handler = self._handlers.get(str(command.get("cmd")))
            if handler is None:
                raise ProtocolError(f"unknown engine command {command.get('cmd')!r}")
            result = handler(call_id, command)
            self.send({"id": call_id, "ok": True, "result": result})
        except Exception as exc:
            if not isinstance(exc, SpecChatError):
                logger.exception("engine command %s failed", command.get("cmd"))
            self.send({"id": call_id, "ok": False, "error": error_to_dict(exc)})
        finally:
            with self._state_lock:
                self._current_id = None

    def _set_engine(self, engine: SpeculativeEngine | None) -> None:
        with self._state_lock:
            self._engine = engine

    def _close_engine(self) -> None:
        engine = self._engine
        self._set_engine(None)
        if engine is not None:
            engine.close()

    def _require_engine(self) -> SpeculativeEngine:
        if self._engine is None:
            raise ConfigError("no model is loaded; load a target model first")
        return self._engine

    def _progress_reporter(
        self, call_id: int, command: dict[str, Any]
    ) -> Callable[[str, float], bool]:
        last_sent: dict[str, float] = {}
        # Test hook: slow each progress step down so a test can cancel mid-load.
        delay = float(command.get("test_progress_delay_s", 0.0)) if self._test_hooks else 0.0

        def report(which: str, fraction: float) -> bool:
            # False makes llama.cpp stop loading; the engine raises LoadCancelledError.
            keep_going = not self._current_cancelled.is_set()
            if fraction >= 1.0 or fraction - last_sent.get(which, -1.0) >= PROGRESS_STEP:
                last_sent[which] = fraction
                self.send({"id": call_id, "progress": [which, fraction]})
            if delay:
                time.sleep(delay)  # a cancel sent now is seen at the next call
            return keep_going

        return report

    # -- commands -----------------------------------------------------------------------

    def _load(self, call_id: int, command: dict[str, Any]) -> dict[str, Any]:
        target = protocol.model_config_from_dict(command["target"])
        draft = protocol.model_config_from_dict(command["draft"]) if command["draft"] else None
        target_meta = read_gguf_metadata(target.path)
        target_ctx = _context_size(target, target_meta)
        models = [_memory_here(target_meta, target_ctx, target)]
        if draft is not None:
            draft_meta = read_gguf_metadata(draft.path)
            # Checked here too (the engine checks again) so a refused pair leaves the
            # loaded one in place; same words as the engine's refusal.
            compatibility = check_vocab_compatibility(target_meta.vocab, draft_meta.vocab)
            if not compatibility.compatible:
                raise VocabMismatchError(
                    f"{draft.path.name} cannot draft for {target.path.name}: "
                    f"{compatibility.explain()}"
                )
            models.append(
                estimate_model_memory(draft_meta, draft.n_ctx or target_ctx, _gpu_layers(draft))
            )
        # The loaded pair is freed before the new one loads, so its memory counts as
        # available; a refused pair leaves the loaded one in place.
        loaded = self._engine
        freed = [loaded.target, loaded.draft] if loaded is not None else []
        system = _after_freeing(_system_memory(command.get("system_memory")), freed)
        _refuse_unless_fits(models, system)
        self._close_engine()
        engine = SpeculativeEngine(
            target, draft, on_progress=self._progress_reporter(call_id, command)
        )
        self._set_engine(engine)
        self._target_loads += 1
        if draft is not None:
            self._draft_loads += 1
        return self._pair_info(engine)

    def _set_draft(self, call_id: int, command: dict[str, Any]) -> dict[str, Any]:
        engine = self._require_engine()
        draft = protocol.model_config_from_dict(command["draft"]) if command["draft"] else None
        if draft is not None:
            draft_meta = read_gguf_metadata(draft.path)
            n_ctx = draft.n_ctx or engine.target.n_ctx
            # Only the draft is new (the loaded target is already out of "available"),
            # and the old draft is freed before the new one loads.
            system = _after_freeing(_system_memory(command.get("system_memory")), [engine.draft])
            _refuse_unless_fits(
                [estimate_model_memory(draft_meta, n_ctx, _gpu_layers(draft))], system
            )
        engine.replace_draft(draft, on_progress=self._progress_reporter(call_id, command))
        if draft is not None:
            self._draft_loads += 1
        return self._pair_info(engine)

    def _unload(self, _call_id: int, _command: dict[str, Any]) -> None:
        self._close_engine()

    def _tokenize(self, _call_id: int, command: dict[str, Any]) -> list[int]:
        return self._require_engine().tokenize(str(command["text"]))

    def _tokenize_chat(self, _call_id: int, command: dict[str, Any]) -> list[int]:
        messages = protocol.messages_from_list(command["messages"])
        return self._require_engine().tokenize_chat(messages)

    def _generate(self, call_id: int, command: dict[str, Any]) -> None:
        engine = self._require_engine()
        settings = protocol.settings_from_dict(command["settings"])
        prompt = [int(token) for token in command["prompt"]]
        for event in engine.generate(prompt, settings):
            self.send({"id": call_id, "event": event_to_dict(event)})
            # A cancel that raced the start of generate() (which clears the engine's
            # flag) is re-applied here, so it takes effect by the next step.
            if self._current_cancelled.is_set():
                engine.cancel()

    def _cost_curve(self, _call_id: int, command: dict[str, Any]) -> dict[str, Any]:
        curve = measure_pair_curve(
            self._require_engine(),
            max_k=int(command["max_k"]),
            repeats=int(command["repeats"]),
            context=int(command["context"]),
        )
        return curve.to_dict()

    def _state(self, _call_id: int, _command: dict[str, Any]) -> dict[str, Any]:
        engine = self._engine
        return {
            "pid": os.getpid(),
            "target_loads": self._target_loads,
            "draft_loads": self._draft_loads,
            "target": str(engine.target.path) if engine else None,
            "draft": str(engine.draft.path) if engine and engine.draft else None,
        }

    def _debug(self, _call_id: int, command: dict[str, Any]) -> None:
        if not self._test_hooks:
            raise ProtocolError(f"unknown engine command {protocol.DEBUG!r}")
        kind = command.get("kind")
        if kind == "stdout_noise":
            # What a native printf does: bytes on fd 1, which must not reach the client.
            os.write(1, b"native noise on stdout\n")
            return
        if kind == "ggml_abort":
            # The path a failed GGML_ASSERT takes: message on stderr, then abort().
            ggml = load_ggml_library()
            ggml.ggml_abort.restype = None
            ggml.ggml_abort(b"debug_crash.c", 1, b"GGML_ASSERT(%s) failed", b"test_hook")
        elif kind == "segfault":
            ctypes.string_at(0)
        elif kind == "exit":
            os._exit(int(command.get("code", 3)))
        raise ConfigError(f"unknown debug action {kind!r}")

    def _pair_info(self, engine: SpeculativeEngine) -> dict[str, Any]:
        target_layers = offloaded_layers(engine.target)
        draft_layers = offloaded_layers(engine.draft) if engine.draft else 0
        backend, device = describe_placement(max(target_layers, draft_layers))
        workers = engine.target.config.rpc_servers
        if workers:
            backend, device = f"{backend} + RPC", f"{device} + {_describe_workers(workers)}"
        return {
            "target_path": str(engine.target.path),
            "draft_path": str(engine.draft.path) if engine.draft else None,
            "n_ctx": engine.target.n_ctx,
            "has_chat_template": engine.target.metadata.has_chat_template,
            "backend": backend,
            "device": device,
            "target_gpu_layers": target_layers,
            "draft_gpu_layers": draft_layers,
            "placement": pair_placement(engine.target, engine.draft),
        }


# -- memory -------------------------------------------------------------------------


def _describe_workers(endpoints: Sequence[str]) -> str:
    """E.g. ``"RPC 10.0.0.7:50052 (5.1 GiB free of 7.8 GiB)"``, one per worker (a
    CPU worker's free memory is not reported: its size alone, as Check shows it)."""
    parts = []
    for endpoint in endpoints:
        free, total = loaded_worker_memory(endpoint)
        parts.append(f"RPC {endpoint} ({describe_memory([WorkerDevice(free, total)])})")
    return ", ".join(parts)


def _context_size(config: ModelConfig, meta: GgufMetadata) -> int:
    # As LoadedModel picks it: the configured size, else the training context capped.
    if config.n_ctx > 0:
        return config.n_ctx
    return min(meta.context_length or DEFAULT_CONTEXT, DEFAULT_CONTEXT)


def _gpu_layers(config: ModelConfig) -> int:
    if not gpu_offload_supported():
        return 0
    return -1 if config.n_gpu_layers < 0 else config.n_gpu_layers


def _memory_here(meta: GgufMetadata, n_ctx: int, config: ModelConfig) -> ModelMemory:
    """What a model needs from this machine.

    With RPC workers, the offloaded layers live on them (and on local GPUs, by the
    tensor split); only the rest is checked here, and llama.cpp says so if a worker
    cannot hold its share.
    """
    if not config.rpc_servers:
        return estimate_model_memory(meta, n_ctx, _gpu_layers(config))
    layers = -1 if config.n_gpu_layers < 0 else config.n_gpu_layers
    memory = estimate_model_memory(meta, n_ctx, layers)
    kept = 1.0 - memory.gpu_fraction
    return dataclasses.replace(
        memory,
        weights_bytes=int(memory.weights_bytes * kept),
        kv_cache_bytes=int(memory.kv_cache_bytes * kept),
        gpu_layers=0,
    )


def _system_memory(override: dict[str, Any] | None) -> SystemMemory:
    if override:
        return SystemMemory(**override)
    memory = read_system_memory(query_gpu=False)
    if not gpu_offload_supported():
        return memory
    # ggml knows every GPU backend's free memory (CUDA, Metal, Vulkan); nvidia-smi
    # is the fallback when its registry cannot be read.
    gpus = [device for device in gpu_devices() if device.memory_total]
    free_vram = gpus[0].memory_free if gpus else detect_free_vram_bytes()
    return SystemMemory(memory.total_ram_bytes, memory.available_ram_bytes, free_vram)


def _after_freeing(system: SystemMemory, models: list[LoadedModel | None]) -> SystemMemory:
    """``system`` as it will be once ``models`` are closed (by their own estimates)."""
    ram, vram = 0, 0
    for model in models:
        if model is None:
            continue
        share = (
            _memory_here(model.metadata, model.n_ctx, model.config)
            if model.config.rpc_servers
            else estimate_model_memory(model.metadata, model.n_ctx, offloaded_layers(model))
        )
        ram += share.ram_bytes
        vram += share.vram_bytes
    free_vram = system.free_vram_bytes
    return SystemMemory(
        system.total_ram_bytes,
        system.available_ram_bytes + ram,
        free_vram + vram if free_vram is not None else None,
    )


def _refuse_unless_fits(models: list[ModelMemory], system: SystemMemory) -> None:
    fit = check_memory_fit(models, system)
    if fit.fits:
        if fit.warning:
            logger.warning("%s", fit.warning)
        return
    names = " + ".join(model.name for model in models)
    raise InsufficientMemoryError(
        f"{names} {fit.warning}.",
        ram_needed_bytes=fit.ram_needed_bytes,
        ram_available_bytes=system.available_ram_bytes,
        vram_needed_bytes=fit.vram_needed_bytes,
        vram_free_bytes=system.free_vram_bytes,
    )


# -- entry point ----------------------------------------------------------------------


def _protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """Commands in, replies out; fd 1 becomes a second stderr for native prints."""
    # A windowed frozen app may start with sys.std* set to None even though the
    # client passed pipes as fds 0-2; use the fds directly then.
    if sys.stderr is None:
        sys.stderr = open(2, "w", buffering=1, errors="replace", closefd=False)  # noqa: SIM115
    if sys.stdout is not None:
        sys.stdout.flush()
    replies_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    commands_in = sys.stdin.buffer if sys.stdin is not None else open(0, "rb", closefd=False)  # noqa: SIM115
    return commands_in, os.fdopen(replies_fd, "wb")


def _write_llama_problem(level: int, message: str) -> None:
    prefix = protocol.LLAMA_ERROR_PREFIX if level >= 4 else protocol.LLAMA_WARNING_PREFIX
    sys.stderr.write(prefix + message + "\n")
    sys.stderr.flush()


def _lower_priority_if_asked() -> None:
    # Before llama.cpp starts its threads, which inherit their creator's nice value.
    # Linux keeps one per thread, so the threads already started while importing
    # (numpy's OpenBLAS pool) are lowered one by one.
    steps = os.environ.pop(protocol.NICE_ENV, "")
    if not steps or not hasattr(os, "nice"):
        return
    try:
        lowered = os.nice(int(steps))
        threads = Path("/proc/self/task")
        if threads.is_dir():
            for thread in threads.iterdir():
                os.setpriority(os.PRIO_PROCESS, int(thread.name), lowered)
    except (OSError, ValueError) as error:
        sys.stderr.write(f"could not lower the engine's priority: {error}\n")


def run_host() -> int:
    """Serve one client over this process's stdin/stdout; returns the exit status."""
    _lower_priority_if_asked()
    commands_in, replies_out = _protocol_streams()
    # Ctrl+C in a terminal reaches the whole process group; the client decides when
    # the engine stops (it closes the pipe), so the engine must not die of it first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A native crash then leaves a Python traceback on stderr, next to ggml's message.
    faulthandler.enable(sys.stderr)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    ensure_backend()
    add_problem_listener(_write_llama_problem)
    Host(commands_in, replies_out).serve()
    return 0


def run_if_requested(argv: Sequence[str]) -> None:
    """For a frozen app's entry point: become the engine process if asked to.

    Call it first thing in ``main()``; it returns only when ``argv`` does not ask
    for the engine (``default_worker_command()`` passes ``HOST_ARGUMENT``).
    """
    if len(argv) > 1 and argv[1] == protocol.HOST_ARGUMENT:
        sys.exit(run_host())


if __name__ == "__main__":
    sys.exit(run_host())
