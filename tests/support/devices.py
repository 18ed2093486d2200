"""Where the test run's models compute: some behaviour is the CPU backend's alone.

On a GPU build (tests/gpu/ runs the engine suite there) batched and single-token
kernels round differently, llama.cpp's abort callback is polled only between CPU graph
nodes, and weights live in VRAM rather than in the process's memory.
"""

from __future__ import annotations

from core.engine.backend import gpu_devices

ON_GPU = bool(gpu_devices())
