"""One loaded GGUF model: its llama.cpp context, vocabulary and KV cache.

The KV cache is mirrored by ``cached_tokens`` (token at position i is
``cached_tokens[i]``), which gives the engine three invariants for free:
positions never skip, rolling back is truncating the list and the cache together,
and a new prompt that shares a prefix with the cache reuses it.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

from core.engine.backend import clear_recent_problems, ensure_backend, recent_problems
from core.engine.config import DEFAULT_CONTEXT, ModelConfig
from core.errors import EngineError, LoadCancelledError, ModelLoadError
from core.gguf_meta import GgufMetadata, read_gguf_metadata

logger = logging.getLogger(__name__)


class ContextFullError(EngineError):
    """A decode would place tokens beyond the context window."""


class LoadedModel:
    """A llama.cpp model plus context; not thread-safe, one owner thread.

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
        self.metadata: GgufMetadata = read_gguf_metadata(config.path)
        self._model: llama_cpp.llama_model_p | None = None
        self._ctx: llama_cpp.llama_context_p | None = None
        self._batch: llama_cpp.llama_batch | None = None
        self._load_model(on_progress)
        try:
            self._create_context(n_ctx_override)
        except BaseException:
            self.close()
            raise
        self.cached_tokens: list[int] = []
        self._piece_buffer = ctypes.create_string_buffer(256)

    # -- loading -----------------------------------------------------------------

    def _load_model(self, on_progress: Callable[[float], bool] | None = None) -> None:
        params = llama_cpp.llama_model_default_params()
        n_gpu_layers = self.config.n_gpu_layers
        if n_gpu_layers < 0:
            n_gpu_layers = 999 if llama_cpp.llama_supports_gpu_offload() else 0
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = self.config.weight_repack
        self.n_gpu_layers = n_gpu_layers
        aborted = False

        def progress(fraction: float, _user_data: ctypes.c_void_p) -> bool:
            nonlocal aborted
            assert on_progress is not None
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
        native_progress = llama_cpp.llama_progress_callback(progress) if on_progress else None
        if native_progress is not None:
            params.progress_callback = native_progress
        clear_recent_problems()
        model = llama_cpp.llama_model_load_from_file(str(self.config.path).encode(), params)
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
        params.n_threads = self.config.n_threads
        params.n_threads_batch = self.config.n_threads
        params.no_perf = True
        clear_recent_problems()
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            raise ModelLoadError(
                f"llama.cpp could not create a {n_ctx}-token context for "
                f"{self.config.path.name}: {recent_problems() or 'out of memory?'}"
            )
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_ctx = int(llama_cpp.llama_n_ctx(ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(ctx))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    def close(self) -> None:
        """Free native memory; safe to call twice."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    @property
    def path(self) -> Path:
        return self.config.path

    @property
    def context(self) -> llama_cpp.llama_context_p:
        assert self._ctx is not None, "model is closed"
        return self._ctx

    @property
    def vocab(self) -> llama_cpp.llama_vocab_p:
        return self._vocab

    # -- text <-> tokens -------------------------------------------------------------

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self._vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
        if count < 0:
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), buffer, capacity, add_special, parse_special
            )
        if count < 0:
            raise EngineError(f"tokenization failed for text of {len(data)} bytes")
        return list(buffer[:count])

    def token_bytes(self, token: int, special: bool = False) -> bytes:
        """The raw bytes of one token; may be part of a multi-byte character."""
        size = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece_buffer, len(self._piece_buffer), 0, special
        )
        if size < 0:
            self._piece_buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(
                self._vocab, token, self._piece_buffer, len(self._piece_buffer), 0, special
            )
        return self._piece_buffer.raw[:size]

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- KV cache --------------------------------------------------------------------

    def forget_from(self, position: int) -> None:
        """Drop cache entries at ``position`` and after (rollback after verification)."""
        if position >= len(self.cached_tokens):
            return
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
        limit = min(len(tokens), len(self.cached_tokens))
        index = 0
        cached = self.cached_tokens
        while index < limit and cached[index] == tokens[index]:
            index += 1
        return index

    def prefill(self, tokens: list[int]) -> int:
        """Make the cache hold exactly ``tokens``, reusing a shared prefix.

        Returns:
            how many tokens had to be decoded.
        """
        shared = self.common_prefix_length(tokens)
        self.forget_from(shared)
        missing = tokens[shared:]
        if missing:
            self.append(missing)
        return len(missing)

    def append(self, tokens: list[int], all_logits: bool = False) -> None:
        """Decode ``tokens`` at the next positions.

        With ``all_logits`` every token gets an output row (verification; must fit one
        batch), otherwise only the last one does. Splits into ``n_batch`` chunks since
        an oversized batch aborts the process.
        """
        if not tokens:
            return
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
            chunk = tokens[chunk_start : chunk_start + self.n_batch]
            is_last_chunk = chunk_start + len(chunk) == len(tokens)
            for index, token in enumerate(chunk):
                batch.token[index] = token
                batch.pos[index] = start + chunk_start + index  # type: ignore[call-overload]  # llama_cpp types pos as an array of arrays
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = 0
                batch.logits[index] = all_logits or (is_last_chunk and index == len(chunk) - 1)
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(self._ctx, batch)
            if status != 0:
                # Keep the mirror honest: llama.cpp keeps the chunks that succeeded.
                self.cached_tokens.extend(tokens[:chunk_start])
                self.forget_from(start + chunk_start)
                raise EngineError(
                    f"llama_decode returned {status} for {self.path.name}"
                    + (" (KV cache full)" if status == 1 else "")
                )
        self.cached_tokens.extend(tokens)

    def logits(self, row: int) -> npt.NDArray[np.float32]:
        """A numpy view (no copy) of the logits of output row ``row`` (-1: last)."""
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, row)
        if not pointer:
            raise EngineError(f"no logits for row {row}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def reset(self) -> None:
        """Forget the whole cache."""
        llama_cpp.llama_memory_clear(self._memory, True)
        self.cached_tokens = []
