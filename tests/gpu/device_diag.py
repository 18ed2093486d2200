"""Loads a tiny model on the GPU build in several ways, to find which one crashes."""

import logging
import sys
from pathlib import Path

mode = sys.argv[1]
if mode == "raw":
    import llama_cpp

    from tests.support.tiny_gguf import write_tiny_model

    path = write_tiny_model(Path("/tmp/diag.gguf"))
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = int(sys.argv[2])
    if len(sys.argv) > 3:
        params.use_extra_bufts = False
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    print("RAW LOADED", bool(model), flush=True)
else:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
    from core.engine import ModelConfig, SpeculativeEngine
    from tests.support.tiny_gguf import write_tiny_model

    path = write_tiny_model(Path("/tmp/diag.gguf"))
    engine = SpeculativeEngine(ModelConfig(path, n_gpu_layers=int(sys.argv[2]), n_ctx=512))
    print("ENGINE LOADED", engine.tokenize("the cat"), flush=True)
