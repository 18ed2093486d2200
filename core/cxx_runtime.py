"""Make the system C++ runtime the one every llama.cpp library binds to (Linux).

Measured on an H200 with a CUDA build of the vendored llama.cpp (2026-11-27): when numpy
(or gguf, which imports it) was imported before llama_cpp, the first model load crashed
with SIGSEGV in ``llama_model::print_info``, inside ``std::ostream`` number formatting.
libggml-cuda.so exports thousands of ``std::`` symbols of its own (including unique
``num_put`` facet ids), and llama_cpp opens its libraries with RTLD_GLOBAL, so libllama's
stream code could bind to that copy. Opening libstdc++ itself with RTLD_GLOBAL first puts
the real runtime ahead of them in the global scope: the same loads then succeed in every
import order, and the engine tests run on the GPU build. On CPU builds this is a no-op in
effect (the runtime is already loaded by Qt or llama.cpp).
"""

from __future__ import annotations

import ctypes
import sys

CXX_RUNTIME = "libstdc++.so.6"


def make_cxx_runtime_global() -> bool:
    """Open the C++ runtime with RTLD_GLOBAL; True if that happened. Must run before
    llama_cpp is imported, which is why ``core/__init__`` calls it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL(CXX_RUNTIME, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        # A system without the GNU runtime (musl, static builds) cannot have the clash.
        return False
    return True
