"""The asyncio client of the engine process: load, generate, cancel, survive crashes.

Qt-free on purpose: the window, the local server and the tuner all drive the engine
through this one class. It works on any asyncio loop (qasync's included) because it
uses no asyncio subprocess support: the child is a plain ``subprocess.Popen`` and
two threads read its pipes, handing messages to the loop with
``call_soon_threadsafe``.

If the child dies, every waiting call fails with ``WorkerCrashedError``, whose
message says what happened in words (exit code or signal, and the last error line
llama.cpp or Python wrote to the child's stderr). ``start()`` or ``load()`` then
starts a fresh child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import core
from core.engine import ChatMessage, Event, GenerationSettings, ModelConfig, event_from_dict
from core.errors import (
    EngineError,
    InsufficientMemoryError,
    LoadCancelledError,
    ModelFileError,
    SpecChatError,
    VocabMismatchError,
)
from core.library.memory import SystemMemory
from core.tune.cost_curve import CostCurve
from core.worker import protocol
from core.worker.protocol import (
    LLAMA_ERROR_PREFIX,
    ProtocolError,
    encode_frame,
    error_from_dict,
    read_frame,
)

logger = logging.getLogger(__name__)
child_logger = logging.getLogger("core.worker.child")

START_TIMEOUT_S = 60.0
# How long a cancelled load may take to stop before the process is killed instead.
LOAD_ABORT_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 10.0
STDERR_LINES_KEPT = 200
# How far below the client an engine with below_normal_priority runs (POSIX nice
# steps; each is about 1.25x less CPU weight, so 5 is about a third of the client's).
BELOW_NORMAL_NICE = 5

ProgressCallback = Callable[[str, float], None]


def default_worker_command() -> list[str]:
    """The command line that starts the engine process."""
    if getattr(sys, "frozen", False):
        return [sys.executable, protocol.HOST_ARGUMENT]
    return [sys.executable, "-m", "core.worker.host"]


@dataclass(frozen=True)
class PairInfo:
    """What was loaded and where it runs, as the engine process reports it.

    Attributes:
        backend: "CPU", "CUDA", "Metal", "Vulkan"... as llama.cpp's registry names it.
        device: the GPU's name (e.g. "NVIDIA H100 80GB HBM3") or the CPU's model name.
        target_gpu_layers / draft_gpu_layers: layers actually offloaded (0 on CPU).
        placement: where the pair computes, in words that change only when it moves
            (core/engine/placement.py); the tuner's cost curve holds only there.
    """

    target_path: str
    draft_path: str | None
    n_ctx: int
    has_chat_template: bool
    backend: str
    device: str
    target_gpu_layers: int
    draft_gpu_layers: int
    placement: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairInfo:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def describe_offloaded_layers(target_layers: int, draft_layers: int | None) -> str:
    """``"layers offloaded: target 30, draft 30"``: to GPUs or RPC workers, whichever
    the pair uses (not "GPU layers", which read wrong on a machine without a GPU whose
    layers went to workers); ``draft_layers`` None for a pair without a draft model."""
    text = f"layers offloaded: target {target_layers}"
    return text if draft_layers is None else f"{text}, draft {draft_layers}"


class WorkerCrashedError(SpecChatError):
    """The engine process died. ``str()`` is a sentence for the user.

    Attributes:
        exit_code: the process's exit status when it exited, else None.
        signal_name: e.g. "SIGSEGV", "SIGABRT", "SIGKILL" when a signal ended it.
        last_log: the last error line the process wrote (llama.cpp's, usually), or "".
        log_tail: the last lines of its stderr, for a "details" view or a bug report.
    """

    def __init__(
        self,
        message: str,
        exit_code: int | None = None,
        signal_name: str | None = None,
        last_log: str = "",
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.signal_name = signal_name
        self.last_log = last_log
        self.log_tail = log_tail


_SIGNAL_WORDS = {
    "SIGKILL": "was killed (SIGKILL); the system may have run out of memory, "
    "or another program ended it",
    "SIGSEGV": "crashed with a segmentation fault (SIGSEGV)",
    "SIGABRT": "aborted (SIGABRT), usually a failed check inside llama.cpp",
    "SIGILL": "crashed on an illegal instruction (SIGILL): this build of llama.cpp "
    "uses a CPU feature this processor lacks",
    "SIGBUS": "crashed with a bus error (SIGBUS); a model file may have changed "
    "while it was in use",
    "SIGFPE": "crashed with an arithmetic error (SIGFPE)",
    "SIGTERM": "was terminated (SIGTERM)",
}
# Windows reports native crashes as NTSTATUS exit codes.
_WINDOWS_CODES = {
    0xC0000005: "crashed with an access violation",
    0xC000001D: "crashed on an illegal instruction: this build of llama.cpp uses a CPU "
    "feature this processor lacks",
    0xC0000409: "aborted (fast fail), usually a failed check inside llama.cpp",
    0xC0000017: "ran out of memory",
}
# faulthandler's traceback follows a native crash; it is not the reason for it.
_FAULTHANDLER_LINE = re.compile(
    r"^(Fatal Python error|Current thread|Thread 0x|\s+File |Extension modules|"
    r"Stack \(most recent|<no Python frame>|Python runtime state|\s*$)"
)
_ERROR_LINE = re.compile(
    r"GGML_ASSERT|error|failed|abort|exception|out of memory|cannot|unable", re.IGNORECASE
)


def last_error_line(lines: Sequence[str]) -> str:
    """The last line of a child's stderr that reads like the reason it failed."""
    for line in reversed(lines):
        if _FAULTHANDLER_LINE.match(line):
            continue
        if line.startswith(LLAMA_ERROR_PREFIX):
            return line.removeprefix(LLAMA_ERROR_PREFIX).strip()
        if _ERROR_LINE.search(line):
            return line.strip()
    return ""


def describe_exit(returncode: int) -> tuple[str, int | None, str | None]:
    """(what happened in words, exit code or None, signal name or None)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return _SIGNAL_WORDS.get(name, f"was stopped by {name}"), None, name
    if os.name == "nt" and (returncode & 0xFFFFFFFF) in _WINDOWS_CODES:
        return _WINDOWS_CODES[returncode & 0xFFFFFFFF], returncode, None
    if returncode == 0:
        return "exited unexpectedly", 0, None
    return f"exited unexpectedly with code {returncode}", returncode, None


_END = object()  # ends a streamed call's queue


def _cancel_frame(call: _Call) -> bytes:
    return encode_frame({"id": -1, "cmd": protocol.CANCEL, "call": call.id})


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # Nobody may await a call whose caller gave up; don't log its error as "never
    # retrieved".
    if not future.cancelled():
        future.exception()


@dataclass
class _Call:
    id: int
    name: str
    future: asyncio.Future[Any]
    events: asyncio.Queue[Any] | None = None  # streamed calls (generate)
    on_progress: ProgressCallback | None = None
    discard: bool = False  # the consumer went away: drop further events


@dataclass
class _Session:
    """One child process and the calls waiting on it."""

    process: subprocess.Popen[bytes]
    ready: asyncio.Future[int]
    exited: asyncio.Future[None]
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_LINES_KEPT))
    calls: dict[int, _Call] = field(default_factory=dict)
    next_id: int = 1
    stopping: bool = False  # we are closing or killing it: its exit is no crash
    protocol_error: str = ""
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alive(self) -> bool:
        return not self.exited.done()


class EngineWorker:
    """Runs a SpeculativeEngine in a child process; all methods run on one loop.

    Args:
        on_crash: called (on the loop) with the error when the child dies on its own.
        command: the command line of the child; ``default_worker_command()`` if None.
        system_memory: memory to assume instead of measuring it before each load
            (tests, or a user's "pretend I have less" setting).
        below_normal_priority: run the engine below the client's priority (nice
            +5; "below normal" on Windows). For the window: llama.cpp keeps every
            core busy, and at equal priority the GUI thread's worst event-loop
            stall while streaming on 2 cores was 40-76 ms, about half of it spent
            waiting for a core; with the engine below it, 19-32 ms. The engine
            still has every cycle the GUI leaves. Headless users (the server, the
            command line) keep normal priority.
    """

    def __init__(
        self,
        on_crash: Callable[[WorkerCrashedError], None] | None = None,
        *,
        command: Sequence[str] | None = None,
        system_memory: SystemMemory | None = None,
        below_normal_priority: bool = False,
    ) -> None:
        self._on_crash = on_crash
        self._below_normal_priority = below_normal_priority
        self._command = list(command) if command else default_worker_command()
        self._system_memory = system_memory
        self._session: _Session | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pair: PairInfo | None = None
        self._last_crash: WorkerCrashedError | None = None
        self._cancellable: set[int] = set()
        # Test hook (needs protocol.TEST_HOOKS_ENV=1 in the child): slow loads down.
        self._test_progress_delay_s = 0.0

    # -- state ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._session is not None and self._session.alive

    @property
    def pid(self) -> int | None:
        return self._session.process.pid if self._session is not None else None

    @property
    def pair_info(self) -> PairInfo | None:
        """The loaded pair as of the last load / set_draft, or None."""
        return self._pair

    @property
    def last_crash(self) -> WorkerCrashedError | None:
        return self._last_crash

    # -- process --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine process (no-op if running) and wait until it takes commands."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._pair = None
        env = dict(os.environ)
        if not getattr(sys, "frozen", False):
            # The child must import this very copy of core, wherever it was run from.
            root = str(Path(core.__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        # ggml's backtrace attaches a debugger on abort: slow, and it would push the
        # reason for the abort out of the stderr lines the crash report keeps.
        env.setdefault("GGML_NO_BACKTRACE", "1")
        creationflags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        env.pop(protocol.NICE_ENV, None)
        if self._below_normal_priority:
            if sys.platform == "win32":
                creationflags |= subprocess.BELOW_NORMAL_PRIORITY_CLASS
            else:
                env[protocol.NICE_ENV] = str(BELOW_NORMAL_NICE)
        process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            creationflags=creationflags,
        )
        session = _Session(process, loop.create_future(), loop.create_future())
        session.ready.add_done_callback(_consume_exception)
        self._session = session
        stderr_reader = threading.Thread(
            target=self._read_stderr, args=(session,), name="engine-stderr", daemon=True
        )
        stderr_reader.start()
        threading.Thread(
            target=self._read_replies,
            args=(session, loop, stderr_reader),
            name="engine-replies",
            daemon=True,
        ).start()
        try:
            await asyncio.wait_for(asyncio.shield(session.ready), START_TIMEOUT_S)
        except TimeoutError:
            await self._stop(session, kill=True)
            raise EngineError(
                f"the engine process did not start within {START_TIMEOUT_S:.0f} s"
            ) from None

    def _read_stderr(self, session: _Session) -> None:
        stream = session.process.stderr
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                session.stderr.append(line)
                child_logger.debug("%s", line)
        stream.close()

    def _read_replies(
        self,
        session: _Session,
        loop: asyncio.AbstractEventLoop,
        stderr_reader: threading.Thread,
    ) -> None:
        stream = session.process.stdout
        assert stream is not None
        try:
            while True:
                message = read_frame(stream)  # type: ignore[arg-type]  # a BufferedReader
                if message is None:
                    break
                loop.call_soon_threadsafe(self._on_message, session, message)
        except (ProtocolError, OSError) as exc:
            session.protocol_error = str(exc)
            session.process.kill()
        session.process.wait()
        stream.close()
        # Let the last stderr lines (the reason it died) arrive before reporting.
        stderr_reader.join(timeout=5)
        stdin = session.process.stdin
        with contextlib.suppress(OSError), session.write_lock:
            if stdin is not None:
                stdin.close()
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(self._on_exit, session)

    def _on_message(self, session: _Session, message: dict[str, Any]) -> None:
        if message.get("ready"):
            if not session.ready.done():
                session.ready.set_result(int(message.get("pid", 0)))
            return
        call = session.calls.get(int(message.get("id", -1)))
        if call is None:
            return
        if "progress" in message:
            which, fraction = message["progress"]
            if call.on_progress is not None:
                try:
                    call.on_progress(str(which), float(fraction))
                except Exception:
                    logger.exception("load progress callback failed")
        elif "event" in message:
            if call.events is not None and not call.discard:
                call.events.put_nowait(event_from_dict(message["event"]))
        elif "ok" in message:
            del session.calls[call.id]
            self._cancellable.discard(call.id)
            if message["ok"]:
                self._finish(call, result=message.get("result"))
            else:
                self._finish(call, error=error_from_dict(message.get("error", {})))

    @staticmethod
    def _finish(call: _Call, result: Any = None, error: BaseException | None = None) -> None:
        if call.events is not None:
            call.events.put_nowait(error if error is not None else _END)
        if not call.future.done():
            if error is not None:
                call.future.set_exception(error)
            else:
                call.future.set_result(result)

    def _on_exit(self, session: _Session) -> None:
        error = self._crash_error(session)
        for call in list(session.calls.values()):
            self._finish(call, error=error)
        session.calls.clear()
        if not session.ready.done():
            session.ready.set_exception(error)
        if not session.exited.done():
            session.exited.set_result(None)
        if self._session is session:
            self._pair = None
            self._cancellable.clear()
        if session.stopping:
            return
        logger.warning("%s", error)
        self._last_crash = error
        if self._on_crash is not None:
            self._on_crash(error)

    @staticmethod
    def _crash_error(session: _Session) -> WorkerCrashedError:
        returncode = session.process.returncode
        what, exit_code, signal_name = describe_exit(returncode if returncode is not None else 0)
        lines = list(session.stderr)
        last = last_error_line(lines)
        if session.protocol_error:
            message = f"The engine process sent a corrupt message ({session.protocol_error})."
        elif session.stopping:
            message = "The engine process was stopped before this finished."
        else:
            message = f"The engine process {what}."
        if last:
            message += f" Its last error: {last}"
        return WorkerCrashedError(message, exit_code, signal_name, last, "\n".join(lines[-40:]))

    async def _stop(self, session: _Session, kill: bool) -> None:
        session.stopping = True
        if kill:
            with contextlib.suppress(OSError):
                session.process.kill()
        else:
            stdin = session.process.stdin
            with contextlib.suppress(OSError), session.write_lock:
                # End of input tells the host to stop what it runs and exit.
                if stdin is not None:
                    stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(session.exited), CLOSE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("the engine process did not exit; killing it")
            with contextlib.suppress(OSError):
                session.process.kill()
            await asyncio.shield(session.exited)

    async def close(self) -> None:
        """Stop the engine process, letting it free its models; kills it if it hangs."""
        session = self._session
        if session is None:
            return
        if session.alive:
            await self._stop(session, kill=False)
        if self._session is session:
            self._session = None
        self._pair = None

    # -- calls ----------------------------------------------------------------------------

    def _request(
        self,
        name: str,
        *,
        stream: bool = False,
        on_progress: ProgressCallback | None = None,
        **arguments: Any,
    ) -> _Call:
        session = self._session
        if session is None or not session.alive:
            raise EngineError("the engine process is not running; load the models again")
        assert self._loop is not None
        call = _Call(
            id=session.next_id,
            name=name,
            future=self._loop.create_future(),
            events=asyncio.Queue() if stream else None,
            on_progress=on_progress,
        )
        call.future.add_done_callback(_consume_exception)
        try:
            frame = encode_frame({"id": call.id, "cmd": name, **arguments})
        except UnicodeEncodeError as exc:
            # Half of a surrogate pair (a pasted or cut emoji) is no UTF-8 text: the
            # call fails here, or it would never be sent and never answered.
            raise EngineError(f"the text holds something that is not text ({exc.reason})") from None
        session.next_id += 1
        session.calls[call.id] = call
        self._write(session, frame, name)
        return call

    @staticmethod
    def _write(session: _Session, frame: bytes, name: str) -> None:
        stdin = session.process.stdin
        assert stdin is not None
        try:
            with session.write_lock:
                stdin.write(frame)
                stdin.flush()
        except (OSError, ValueError):
            # The child is gone (broken pipe) or being closed: its exit, reported by
            # the reader thread, fails the call with the reason.
            logger.debug("could not send %s to the engine process", name)

    async def _call(self, name: str, **arguments: Any) -> Any:
        return await self._request(name, **arguments).future

    async def _cancellable_call(
        self, name: str, on_progress: ProgressCallback | None, **arguments: Any
    ) -> Any:
        """A load-like call: cancelling the awaiting task aborts it in the child."""
        session = self._session
        call = self._request(name, on_progress=on_progress, **arguments)
        self._cancellable.add(call.id)
        try:
            return await asyncio.shield(call.future)
        except asyncio.CancelledError:
            assert session is not None
            await self._abort(session, call)
            raise

    async def _abort(self, session: _Session, call: _Call) -> None:
        self._write(session, _cancel_frame(call), protocol.CANCEL)
        try:
            await asyncio.wait_for(asyncio.shield(call.future), LOAD_ABORT_TIMEOUT_S)
        except TimeoutError:
            # llama.cpp checks the abort flag only between tensors; a stuck load (a
            # slow network drive, say) is ended by ending the process.
            logger.warning(
                "the engine process did not stop loading within %g s; "
                "stopping the process instead (the next load starts a new one)",
                LOAD_ABORT_TIMEOUT_S,
            )
            await self._stop(session, kill=True)
        except LoadCancelledError:
            pass  # the expected outcome
        except SpecChatError as exc:
            logger.info("cancelled %s ended with: %s", call.name, exc)
        else:
            # It finished before the cancel arrived; honour the cancel anyway.
            if call.name == protocol.LOAD:
                with contextlib.suppress(SpecChatError):
                    await self._call(protocol.UNLOAD)

    def _load_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self._system_memory is not None:
            arguments["system_memory"] = asdict(self._system_memory)
        if self._test_progress_delay_s:
            arguments["test_progress_delay_s"] = self._test_progress_delay_s
        return arguments

    async def load(
        self,
        target: ModelConfig,
        draft: ModelConfig | None,
        on_progress: ProgressCallback | None = None,
    ) -> PairInfo:
        """Load a target and optional draft, replacing any loaded pair.

        Starts the engine process if it is not running. ``on_progress("target" |
        "draft", fraction)`` follows llama.cpp's load; cancelling the awaiting task
        aborts the load. A pair refused before loading (missing file, vocabulary,
        memory) leaves the loaded pair in place; once llama.cpp starts loading, the
        old pair is gone, so a failed or cancelled load leaves nothing loaded.

        Raises:
            InsufficientMemoryError: the memory estimate says the pair won't fit.
            VocabMismatchError, ModelFileError, ModelLoadError: as the engine raises them.
            WorkerCrashedError: the process died while loading.
        """
        await self.start()
        try:
            result = await self._cancellable_call(
                protocol.LOAD,
                on_progress,
                target=protocol.model_config_to_dict(target),
                draft=protocol.model_config_to_dict(draft) if draft is not None else None,
                **self._load_arguments(),
            )
        except (InsufficientMemoryError, VocabMismatchError, ModelFileError):
            raise
        except BaseException:
            self._pair = None
            raise
        self._pair = PairInfo.from_dict(result)
        return self._pair

    async def set_draft(
        self, draft: ModelConfig | None, on_progress: ProgressCallback | None = None
    ) -> PairInfo:
        """Replace the draft model (None: no draft) without reloading the target.

        An incompatible or too-large draft is refused and the current one kept; if
        the new draft then fails to load, the pair is left without a draft.
        """
        try:
            result = await self._cancellable_call(
                protocol.SET_DRAFT,
                on_progress,
                draft=protocol.model_config_to_dict(draft) if draft is not None else None,
                **self._load_arguments(),
            )
        except (asyncio.CancelledError, LoadCancelledError):
            if self._pair is not None:
                self._pair = PairInfo(**{**asdict(self._pair), "draft_path": None})
            raise
        self._pair = PairInfo.from_dict(result)
        return self._pair

    async def unload(self) -> None:
        """Free both models; the process keeps running for the next load."""
        if self.running:
            await self._call(protocol.UNLOAD)
        self._pair = None

    async def tokenize(self, text: str) -> list[int]:
        """Raw text to the target's tokens (with BOS when the model wants one)."""
        return list(await self._call(protocol.TOKENIZE, text=text))

    async def tokenize_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Apply the target's chat template and tokenize, ready for a reply."""
        return list(
            await self._call(
                protocol.TOKENIZE_CHAT, messages=protocol.messages_to_list(list(messages))
            )
        )

    async def cost_curve(self, max_k: int, repeats: int, context: int) -> CostCurve:
        """Time the loaded target's decodes of 1 … ``max_k`` tokens and the draft's one
        (see core/tune/cost_curve.py); both caches are emptied."""
        result = await self._call(
            protocol.COST_CURVE, max_k=max_k, repeats=repeats, context=context
        )
        return CostCurve.from_dict(result)

    async def generate(
        self,
        prompt: Sequence[int],
        settings: GenerationSettings,
        on_call: Callable[[int], None] | None = None,
    ) -> AsyncIterator[Event]:
        """Stream the answer: StepEvents as they come, then one FinishedEvent.

        Leaving the loop early cancels the answer in the engine process.
        ``on_call`` receives the call's id as soon as it is sent, for
        ``cancel_call()`` (stopping this answer and no other).

        Raises:
            WorkerCrashedError: the process died; events already yielded stand.
            PromptTooLongError, ConfigError...: as the engine raises them.
        """
        call = self._request(
            protocol.GENERATE,
            stream=True,
            prompt=[int(token) for token in prompt],
            settings=protocol.settings_to_dict(settings),
        )
        session = self._session
        self._cancellable.add(call.id)
        if on_call is not None:
            on_call(call.id)
        assert call.events is not None
        complete = False
        try:
            while True:
                item = await call.events.get()
                if item is _END:
                    complete = True
                    return
                if isinstance(item, BaseException):
                    complete = True
                    raise item
                yield item
        finally:
            if not complete and session is not None and session.alive:
                call.discard = True
                self._write(session, _cancel_frame(call), protocol.CANCEL)

    async def cancel(self) -> None:
        """Stop the running answer (it ends with a CANCELLED FinishedEvent) and any
        running load (which then raises LoadCancelledError)."""
        session = self._session
        if session is None or not session.alive:
            return
        for call_id in sorted(self._cancellable):
            await self._call(protocol.CANCEL, call=call_id)

    async def cancel_call(self, call_id: int) -> None:
        """Stop one answer (it ends with a CANCELLED FinishedEvent); others run on."""
        session = self._session
        if session is None or not session.alive or call_id not in self._cancellable:
            return
        await self._call(protocol.CANCEL, call=call_id)
