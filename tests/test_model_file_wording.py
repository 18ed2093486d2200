"""How the engine words a model file it cannot read and a context it cannot allocate:
the path as given, what is wrong, what to do, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine import ModelConfig, SpeculativeEngine
from core.errors import ModelFileError


def test_a_file_that_is_not_gguf_is_named_by_its_full_path_with_what_to_do(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError) as raised:
        SpeculativeEngine(ModelConfig(empty))
    assert str(raised.value) == (
        f"{empty}: not a GGUF file (wrong magic bytes); is this a GGUF model file? "
        "Download or copy the model again"
    )


def test_a_context_that_cannot_be_allocated_is_one_clear_line() -> None:
    from core.engine.model import context_failure

    # What llama.cpp logged for `-c 10000000` on the demo target (joined by
    # core.engine.backend).
    problems = (
        "llama_context: n_ctx_seq (10000128) > n_ctx_train (8192) -- possible training "
        "context overflow | ggml_aligned_malloc: insufficient memory (attempted to allocate "
        "219729.38 MB) | ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer "
        "of size 230402949120 | llama_init_from_model: failed to initialize the context: "
        "failed to allocate buffer for kv cache"
    )
    message = context_failure(10_000_000, "SmolLM2-135M-Instruct.F32.gguf", problems)
    assert message == (
        "not enough memory for a 10000000-token context for SmolLM2-135M-Instruct.F32.gguf "
        "(214.6 GiB asked for); ask for a smaller context"
    )
    # Anything else keeps llama.cpp's words, which are all there is to go on.
    assert context_failure(64, "m.gguf", "bad rope type") == (
        "llama.cpp could not create a 64-token context for m.gguf: bad rope type"
    )
