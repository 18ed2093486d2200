"""One loaded GGUF model: its llama.cpp context, vocabulary and KV cache.

The KV cache is mirrored by ``cached_tokens`` (token at position i is
``cached_tokens[i]``), which gives the engine three invariants for free:
positions never skip, rolling back is truncating the list and the cache together,
and a new prompt that shares a prefix with the cache reuses it.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from core.engine.backend import clear_recent_problems, ensure_backend, recent_problems
from core.engine.config import DEFAULT_CONTEXT, ModelConfig
from core.engine.placement import has_offload_device, plan_placement
from core.errors import (
    EngineClosedError,
    EngineError,
    LoadCancelledError,
    ModelFileError,
    ModelLoadError,
)
from core.gguf_meta import GgufMetadata, read_gguf_metadata
from core.interrupts import interrupt_pending, native_callback, raise_pending_interrupt

logger = logging.getLogger(__name__)

# Token pieces are short; a longer one makes token_bytes retry with its size.
_PIECE_BUFFER_SIZE = 64
# Views of llama.cpp's logits buffer kept at most; more means the buffer moved.
_MAX_LOGIT_VIEWS = 8192
# llama_decode's status when the abort callback stopped it.
_DECODE_ABORTED = 2
# With every layer on a GPU or an RPC worker the CPU only feeds the graph its inputs,
# and more threads only add their start and barrier costs to each decode. On an H100
# with the demo pair fully offloaded, a drafting step took 19.0 ms with one thread and
# 22.3 ms with 16 (1.65 against 2.44 ms of it outside llama_decode).
_OFFLOADED_MODEL_THREADS = 1


# What to do about a file that is not a model llama.cpp can read, by the problem found.
_FILE_ADVICE = (
    ("not a GGUF file", "is this a GGUF model file? Download or copy the model again"),
    ("unsupported GGUF version", "convert it again with a current llama.cpp"),
    ("header", "download or copy it again"),
)
# llama.cpp's log line when an allocation fails, e.g. "ggml_aligned_malloc:
# insufficient memory (attempted to allocate 219729.38 MB)".
_ALLOCATION = re.compile(r"attempted to allocate ([0-9.]+) MB")


def read_model_metadata(path: Path) -> GgufMetadata:
    """``read_gguf_metadata``, whose errors name the full path given (not only the
    file's name) and say what to do."""
    try:
        return read_gguf_metadata(path)
    except ModelFileError as exc:
        message = str(exc)
        if message.startswith(f"{path.name}: ") and str(path) != path.name:
            message = f"{path}: {message.removeprefix(f'{path.name}: ')}"
        if "; " not in message:
            advice = next((text for key, text in _FILE_ADVICE if key in message), "")
            message = f"{message}; {advice}" if advice else message
        raise ModelFileError(message) from exc


def context_failure(n_ctx: int, model_name: str, problems: str) -> str:
    """One sentence for a context llama.cpp could not create, from its log lines."""
    allocation = _ALLOCATION.search(problems)
    if allocation or "failed to allocate" in problems or "insufficient memory" in problems:
        size = f" ({float(allocation.group(1)) / 1024:,.1f} GiB asked for)" if allocation else ""
        return (
            f"not enough memory for a {n_ctx}-token context for {model_name}{size}; "
            "ask for a smaller context"
        )
    return (
        f"llama.cpp could not create a {n_ctx}-token context for {model_name}: "
        f"{problems or 'out of memory?'}"
    )


class ContextFullError(EngineError):
    """A decode would place tokens beyond the context window."""


class DecodeCancelledError(EngineError):
    """A cancellable decode stopped because its cancel event was set.

    The cache keeps the chunks decoded before the cancel and ``cached_tokens``
    says which, so the next prompt reuses them.
    """


def _free_native(handles: dict[str, Any]) -> None:
    """Free a model's native objects once; runs from ``close()`` or the finalizer.

    Takes a plain dict, not the ``LoadedModel``, so the finalizer keeps no
    reference to the object it watches (it would never be collected).
    """
    batch, ctx, model = (
        handles.pop("batch", None),
        handles.pop("ctx", None),
        handles.pop("model", None),
    )
    if batch is not None:
        llama_cpp.llama_batch_free(batch)
    if ctx is not None:
        llama_cpp.llama_free(ctx)
    if model is not None:
        llama_cpp.llama_model_free(model)
    # The abort callback may only go once the context that could call it is gone.
    handles.pop("abort_callback", None)


class _AbortFlag:
    """What llama.cpp's abort callback reads; holds no reference to the model."""

    def __init__(self) -> None:
        self.event: threading.Event | None = None

    def __call__(self, _data: ctypes.c_void_p) -> bool:
        # ctypes prints and swallows exceptions raised in a callback and returns
        # False, so this must not raise: an attribute read and Event.is_set() don't
        # (a Ctrl+C landing here is caught by native_callback and stops the decode).
        event = self.event
        return (event is not None and event.is_set()) or interrupt_pending()


class LoadedModel:
    """A llama.cpp model plus context; one owner thread decodes.

    ``tokenize()`` and ``token_bytes()`` only read the vocabulary and may run in
    other threads meanwhile. Every call that reaches llama.cpp raises
    EngineClosedError after ``close()``; a model dropped without ``close()`` is
    freed by a finalizer.

    Args:
        config: what to load and how.
        n_ctx_override: context size to use instead of ``config.n_ctx`` (the draft
            gets the target's context unless told otherwise).
        on_progress: called with the fraction of weights loaded (0..1) from llama.cpp's
            load progress callback; returning False aborts the load, which then raises
            ``LoadCancelledError``.
    """

    def __init__(
        self,
        config: ModelConfig,
        n_ctx_override: int | None = None,
        on_progress: Callable[[float], bool] | None = None,
    ) -> None:
        ensure_backend()
        self.config = config
        self.metadata: GgufMetadata = read_model_metadata(Path(config.path))
        self._model: llama_cpp.llama_model_p | None = None
        self._ctx: llama_cpp.llama_context_p | None = None
        self._batch: llama_cpp.llama_batch | None = None
        self._vocab: llama_cpp.llama_vocab_p | None = None
        self._load_model(on_progress)
        try:
            self._create_context(n_ctx_override)
        except BaseException:
            self.close()
            raise
        self.cached_tokens: list[int] = []
        # (address, rows) -> a view of llama.cpp's logits buffer (see _rows_at).
        self._logit_views: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        self._abort_flag = _AbortFlag()
        self._abort_callback = llama_cpp.ggml_abort_callback(
            native_callback(True)(self._abort_flag)
        )
        self._native: dict[str, Any] = {
            "batch": self._batch,
            "ctx": self._ctx,
            "model": self._model,
            "abort_callback": self._abort_callback,
        }
        # A model dropped without close() still frees its native memory when it is
        # collected. Not at interpreter exit: a thread may still be decoding then,
        # and the operating system reclaims the memory anyway.
        self._finalizer = weakref.finalize(self, _free_native, self._native)
        self._finalizer.atexit = False

    # -- loading -----------------------------------------------------------------

    def _load_model(self, on_progress: Callable[[float], bool] | None = None) -> None:
        params = llama_cpp.llama_model_default_params()
        n_gpu_layers = self.config.n_gpu_layers
        if n_gpu_layers < 0:
            n_gpu_layers = 999 if llama_cpp.llama_supports_gpu_offload() else 0
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = self.config.weight_repack
        self.n_gpu_layers = n_gpu_layers
        # Bound to a local: llama.cpp reads the arrays during the load.
        placement = plan_placement(self.config)
        placement.apply(params)
        aborted = False

        # Always installed: it is how a Ctrl+C during the load stops the load.
        @native_callback(False)
        def progress(fraction: float, _user_data: ctypes.c_void_p) -> bool:
            nonlocal aborted
            if interrupt_pending():
                aborted = True
                return False
            if on_progress is None:
                return True
            try:
                keep_going = bool(on_progress(float(fraction)))
            except Exception:
                # An exception cannot cross back into C; a broken progress display
                # should not cost the user their load.
                logger.exception("load progress callback failed")
                keep_going = True
            aborted = aborted or not keep_going
            return keep_going

        # The ctypes wrapper must outlive the native call, so it is bound to a local.
        native_progress = llama_cpp.llama_progress_callback(progress)
        params.progress_callback = native_progress
        clear_recent_problems()
        model = llama_cpp.llama_model_load_from_file(str(self.config.path).encode(), params)
        if interrupt_pending():
            if model:
                llama_cpp.llama_model_free(model)
            raise_pending_interrupt()
        if not model and aborted:
            raise LoadCancelledError(f"loading {self.config.path.name} was cancelled")
        if not model:
            detail = recent_problems() or "no detail logged"
            raise ModelLoadError(
                f"llama.cpp could not load {self.config.path.name} "
                f"(architecture {self.metadata.architecture!r}): {detail}"
            )
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.bos_id = int(llama_cpp.llama_vocab_bos(self._vocab))
        self.eos_id = int(llama_cpp.llama_vocab_eos(self._vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        # llama.cpp offloads the output layer too once more layers are asked for than
        # the model has; those go to the workers, or to a GPU where one exists.
        self.fully_offloaded = n_gpu_layers > int(
            llama_cpp.llama_model_n_layer(model)
        ) and has_offload_device(self.config)

    def _create_context(self, n_ctx_override: int | None) -> None:
        n_ctx = n_ctx_override if n_ctx_override else self.config.n_ctx
        if n_ctx <= 0:
            n_ctx = min(self.n_ctx_train or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
        n_batch = min(self.config.n_batch, n_ctx)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = 1
        self.n_threads = (
            min(self.config.n_threads, _OFFLOADED_MODEL_THREADS)
            if self.fully_offloaded
            else self.config.n_threads
        )
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        # At most n_threads; fewer while other programs keep cores busy
        # (core/engine/cpu_contention.py).
        self.decode_threads = self.n_threads
        params.no_perf = True
        clear_recent_problems()
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if ctx and interrupt_pending():
            llama_cpp.llama_free(ctx)
            raise_pending_interrupt()
        if not ctx:
            raise ModelLoadError(context_failure(n_ctx, self.config.path.name, recent_problems()))
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx(ctx))
        if self.n_ctx != n_ctx:
            logger.warning(
                "context size %d for %s became %d: llama.cpp allocates contexts in steps of 256",
                n_ctx,
                self.config.path.name,
                self.n_ctx,
            )
        self.n_batch = int(llama_cpp.llama_n_batch(ctx))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        # Every token belongs to sequence 0: set once here rather than per decoded token.
        for index in range(self.n_batch):
            self._batch.n_seq_id[index] = 1
            self._batch.seq_id[index][0] = 0

    def close(self) -> None:
        """Free native memory; safe to call twice. Later calls raise EngineClosedError.

        Not safe while another thread is inside a call on this model: the engine
        waits for such calls before it closes its models.
        """
        # Mark closed first so a method checking _require_open() never sees a
        # handle that is being freed.
        self._vocab = None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()  # runs _free_native once; later calls do nothing
        else:  # the constructor failed before registering the finalizer
            _free_native({"batch": self._batch, "ctx": self._ctx, "model": self._model})
        self._batch = None
        self._ctx = None
        self._model = None

    @property
    def closed(self) -> bool:
        return self._ctx is None

    def _require_open(self) -> llama_cpp.llama_vocab_p:
        vocab = self._vocab
        if vocab is None or self._ctx is None:
            raise EngineClosedError(f"{self.config.path.name} was unloaded (the engine is closed)")
        return vocab

    @property
    def path(self) -> Path:
        return self.config.path

    @property
    def context(self) -> llama_cpp.llama_context_p:
        self._require_open()
        assert self._ctx is not None  # _require_open() checked it
        return self._ctx

    @property
    def vocab(self) -> llama_cpp.llama_vocab_p:
        return self._require_open()

    # -- text <-> tokens -------------------------------------------------------------

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        vocab = self._require_open()
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                vocab, data, len(data), buffer, capacity, add_special, parse_special
            )
        if count < 0:
            raise EngineError(f"tokenization failed for text of {len(data)} bytes")
        return list(buffer[:count])

    def token_bytes(self, token: int, special: bool = False) -> bytes:
        """The raw bytes of one token; may be part of a multi-byte character.

        Thread-safe: each call has its own buffer (a shared one let a call from
        another thread overwrite the piece the generating thread was reading).
        """
        vocab = self._require_open()
        if not 0 <= token < self.n_vocab:
            # llama.cpp would throw a C++ exception here, which ends the process.
            raise EngineError(
                f"token id {token} is outside the vocabulary of {self.path.name} "
                f"(0..{self.n_vocab - 1})"
            )
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER_SIZE)
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, special)
        return buffer.raw[:size]

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._require_open(), token))

    # -- KV cache --------------------------------------------------------------------

    def forget_from(self, position: int) -> None:
        """Drop cache entries at ``position`` and after (rollback after verification)."""
        if position >= len(self.cached_tokens):
            return
        self._require_open()
        if not llama_cpp.llama_memory_seq_rm(self._memory, 0, position, -1):
            # Recurrent/hybrid caches cannot drop a suffix: rebuild from scratch.
            llama_cpp.llama_memory_clear(self._memory, True)
            kept = self.cached_tokens[:position]
            self.cached_tokens = []
            if kept:
                self.append(kept)
            return
        del self.cached_tokens[position:]

    def common_prefix_length(self, tokens: list[int]) -> int:
        """How many leading tokens of ``tokens`` the cache already holds.

        Called twice per step with the whole history: a Python loop over a long chat
        costs far more than the step's own work, so list slices compare in C,
        halving the range that holds the first difference.
        """
        cached = self.cached_tokens
        if not isinstance(tokens, list):
            tokens = list(tokens)  # a tuple's slice never equals a list's
        matched, limit = 0, min(len(tokens), len(cached))
        while matched < limit:
            middle = (matched + limit + 1) // 2
            if cached[matched:middle] == tokens[matched:middle]:
                matched = middle
            else:
                limit = middle - 1
        return matched

    def prefill(self, tokens: list[int], cancel: threading.Event | None = None) -> int:
        """Make the cache hold exactly ``tokens``, reusing a shared prefix.

        Args:
            cancel: when set (from any thread) the decode stops within one graph
                node on the CPU, or at the next chunk elsewhere, and raises
                DecodeCancelledError.

        Returns:
            how many tokens had to be decoded.
        """
        shared = self.common_prefix_length(tokens)
        self.forget_from(shared)
        missing = tokens[shared:]
        if missing:
            self.append(missing, cancel=cancel)
        return len(missing)

    def append(
        self, tokens: list[int], all_logits: bool = False, cancel: threading.Event | None = None
    ) -> None:
        """Decode ``tokens`` at the next positions.

        With ``all_logits`` every token gets an output row (verification; must fit one
        batch), otherwise only the last one does. Splits into ``n_batch`` chunks since
        an oversized batch aborts the process. With ``cancel``, see ``prefill``.
        """
        if not tokens:
            return
        self._require_open()
        if cancel is None:
            self._decode(tokens, all_logits, None)
            return
        # llama.cpp's abort callback costs a Python call per graph node, so it is on
        # only for the cancellable (long) decodes, never for draft/verify steps.
        self._abort_flag.event = cancel
        llama_cpp.llama_set_abort_callback(self._ctx, self._abort_callback, None)
        try:
            self._decode(tokens, all_logits, cancel)
        finally:
            llama_cpp.llama_set_abort_callback(self._ctx, llama_cpp.ggml_abort_callback(), None)
            self._abort_flag.event = None

    def _decode(self, tokens: list[int], all_logits: bool, cancel: threading.Event | None) -> None:
        start = len(self.cached_tokens)
        if start + len(tokens) > self.n_ctx:
            raise ContextFullError(
                f"{len(tokens)} more tokens do not fit the {self.n_ctx}-token context "
                f"({start} used)"
            )
        if all_logits and len(tokens) > self.n_batch:
            raise EngineError(f"verification batch of {len(tokens)} exceeds n_batch {self.n_batch}")
        batch = self._batch
        assert batch is not None, "model is closed"
        for chunk_start in range(0, len(tokens), self.n_batch):
            if cancel is not None and cancel.is_set():
                self.cached_tokens.extend(tokens[:chunk_start])
                raise DecodeCancelledError(f"decoding for {self.path.name} was cancelled")
            chunk = tokens[chunk_start : chunk_start + self.n_batch]
            outside = next((t for t in chunk if not 0 <= t < self.n_vocab), None)
            if outside is not None:
                self.cached_tokens.extend(tokens[:chunk_start])
                # llama_decode would only return -1 and log why.
                raise EngineError(
                    f"token id {outside} is outside the vocabulary of {self.path.name} "
                    f"(0..{self.n_vocab - 1})"
                )
            is_last_chunk = chunk_start + len(chunk) == len(tokens)
            for index, token in enumerate(chunk):
                batch.token[index] = token
                batch.pos[index] = start + chunk_start + index  # type: ignore[call-overload]  # llama_cpp types pos as an array of arrays
                batch.logits[index] = all_logits or (is_last_chunk and index == len(chunk) - 1)
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(self._ctx, batch)
            if status != 0:
                # Keep the mirror honest: llama.cpp keeps the chunks that succeeded,
                # and nothing of the failed one may stay in the cache.
                self.cached_tokens.extend(tokens[:chunk_start])
                llama_cpp.llama_memory_seq_rm(self._memory, 0, start + chunk_start, -1)
                self.forget_from(start + chunk_start)
                raise_pending_interrupt()
                if status == _DECODE_ABORTED and cancel is not None:
                    raise DecodeCancelledError(f"decoding for {self.path.name} was cancelled")
                raise EngineError(
                    f"llama_decode returned {status} for {self.path.name}"
                    + (" (KV cache full)" if status == 1 else "")
                )
        self.cached_tokens.extend(tokens)
        # A Ctrl+C recorded by the log callback during an uncancellable decode.
        raise_pending_interrupt()

    def logits(self, row: int) -> npt.NDArray[np.float32]:
        """A numpy view (no copy) of the logits of output row ``row`` (-1: last)."""
        return self._rows_at(self._row_address(row), 1)[0]

    def set_decode_threads(self, count: int) -> None:
        """Decode with ``count`` threads (1..n_threads) from the next decode on."""
        count = max(1, min(count, self.n_threads))
        if count != self.decode_threads:
            llama_cpp.llama_set_n_threads(self.context, count, count)
            self.decode_threads = count

    def logit_rows(self, count: int) -> npt.NDArray[np.float32] | None:
        """Output rows 0..count-1 of a batch decoded with ``all_logits`` as one
        (count, n_vocab) view (no copy), or None where llama.cpp does not keep them
        one after another in its buffer.

        One view and one numpy call for a whole verification batch cost less than
        a view and a call per row.
        """
        first = self._row_address(0)
        row_bytes = self.n_vocab * ctypes.sizeof(ctypes.c_float)
        if count > 1 and self._row_address(count - 1) - first != (count - 1) * row_bytes:
            return None
        return self._rows_at(first, count)

    def _row_address(self, row: int) -> int:
        self._require_open()
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, row)
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        if not address:
            raise EngineError(f"no logits for row {row}")
        return address

    def _rows_at(self, address: int, count: int) -> npt.NDArray[np.float32]:
        """``count`` rows of logits from ``address`` on, as a view made once per
        address and count: llama.cpp keeps its logits buffer across decodes, and
        building a view costs more than a drafted token's other bookkeeping."""
        key = (address, count)
        rows = self._logit_views.get(key)
        if rows is None:
            if len(self._logit_views) >= _MAX_LOGIT_VIEWS:
                self._logit_views.clear()  # the buffer moved (more output rows)
            pointer = ctypes.cast(address, ctypes.POINTER(ctypes.c_float))
            rows = np.ctypeslib.as_array(pointer, shape=(count, self.n_vocab))
            self._logit_views[key] = rows
        return rows

    def reset(self) -> None:
        """Forget the whole cache."""
        self._require_open()
        llama_cpp.llama_memory_clear(self._memory, True)
        self.cached_tokens = []
