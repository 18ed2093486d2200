"""SpecChat core: Qt-free engine, models, hub and command line.

Nothing in this package may import Qt; ``tests/test_architecture.py`` enforces it.
"""

__version__ = "0.1.0"
