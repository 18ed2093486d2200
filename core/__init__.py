"""SpecChat core: Qt-free engine, models, hub and command line.

Nothing in this package may import Qt; ``tests/test_architecture.py`` enforces it.
"""

from core.cxx_runtime import make_cxx_runtime_global

__version__ = "0.1.0"

# Before any module of this package imports llama_cpp (see core/cxx_runtime.py).
make_cxx_runtime_global()
