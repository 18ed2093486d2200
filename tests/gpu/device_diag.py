"""Loads one tiny test model on a GPU build in one way, to find which way crashes.

Usage: python tests/gpu/device_diag.py raw|engine N_GPU_LAYERS [VARIANT]
VARIANT (see ``VARIANTS``) changes one thing in the written model. Exit 0 and a
"LOADED" line when it loaded; a crash shows as a signal in the caller.
"""

import logging
import sys
from dataclasses import replace
from pathlib import Path

from gguf import GGUFWriter

from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

VARIANTS = {
    "default": TinyModelSpec(),
    "no-template": TinyModelSpec(chat_template=None),
    "wide": TinyModelSpec(n_embd=256, n_head=4, n_head_kv=4, n_ff=512),
    "head-dim-64": TinyModelSpec(n_embd=128, n_head=2, n_head_kv=2, n_ff=256),
    "four-layers": TinyModelSpec(n_layer=4),
    "more-vocab": TinyModelSpec(extra_tokens=2000),
}


def main() -> int:
    mode, n_gpu_layers = sys.argv[1], int(sys.argv[2])
    variant = sys.argv[3] if len(sys.argv) > 3 else "default"
    spec = VARIANTS.get(variant, TinyModelSpec())
    if variant == "head-lengths":
        # Real conversions also write the per-head key/value lengths.
        original = GGUFWriter.add_head_count_kv

        def with_lengths(self: GGUFWriter, count: int) -> None:
            original(self, count)
            head_dim = spec.n_embd // spec.n_head
            self.add_key_length(head_dim)
            self.add_value_length(head_dim)

        GGUFWriter.add_head_count_kv = with_lengths  # type: ignore[method-assign]
    path = write_tiny_model(Path(f"/tmp/diag-{variant}.gguf"), replace(spec))
    if mode == "raw":
        import llama_cpp

        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = False
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        print("RAW LOADED", bool(model), flush=True)
    else:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
        from core.engine import ModelConfig, SpeculativeEngine

        engine = SpeculativeEngine(ModelConfig(path, n_gpu_layers=n_gpu_layers, n_ctx=512))
        print("ENGINE LOADED", engine.tokenize("the cat"), flush=True)
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
