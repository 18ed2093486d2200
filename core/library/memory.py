"""Will a target and its draft fit in memory? Estimated from GGUF metadata alone.

Each model needs its weights (about its file size) plus a KV cache of
``2 (K and V) * n_layer * n_ctx * n_head_kv * head_dim`` f16 values, plus compute
buffers. Layers offloaded to the GPU take their share of both from VRAM instead
of RAM. The numbers are estimates, good enough to warn before a load that would
swap or fail, not a promise.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.gguf_meta import GgufMetadata
from core.human_units import format_gib

logger = logging.getLogger(__name__)

GIB = 1 << 30
KV_BYTES_PER_ELEMENT = 2  # f16, llama.cpp's default cache type
# Compute buffers and runtime state: a rough allowance on top of weights and cache.
RUNTIME_OVERHEAD_BYTES = 256 << 20
RUNTIME_OVERHEAD_FRACTION = 0.05
# Above this share of what is free, loading works but squeezes everything else.
TIGHT_FRACTION = 0.9


@dataclass(frozen=True)
class SystemMemory:
    """Memory this machine has; VRAM is None when no GPU could be queried."""

    total_ram_bytes: int
    available_ram_bytes: int
    free_vram_bytes: int | None = None


@dataclass(frozen=True)
class ModelMemory:
    """One model's share: weights, KV cache and overhead, split between RAM and VRAM."""

    name: str
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    n_ctx: int
    n_layer: int
    gpu_layers: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    @property
    def gpu_fraction(self) -> float:
        return self.gpu_layers / self.n_layer if self.n_layer else 0.0

    @property
    def vram_bytes(self) -> int:
        return int((self.weights_bytes + self.kv_cache_bytes) * self.gpu_fraction)

    @property
    def ram_bytes(self) -> int:
        return self.total_bytes - self.vram_bytes


@dataclass(frozen=True)
class MemoryFit:
    """Verdict for loading some models together."""

    models: tuple[ModelMemory, ...]
    system: SystemMemory
    fits: bool
    warning: str | None

    @property
    def ram_needed_bytes(self) -> int:
        return sum(model.ram_bytes for model in self.models)

    @property
    def vram_needed_bytes(self) -> int:
        return sum(model.vram_bytes for model in self.models)

    def summary(self) -> str:
        line = f"needs {format_gib(self.ram_needed_bytes)} RAM"
        if self.vram_needed_bytes:
            line += f" + {format_gib(self.vram_needed_bytes)} VRAM"
        line += f" (RAM available {format_gib(self.system.available_ram_bytes)}"
        if self.system.free_vram_bytes is not None:
            line += f", VRAM free {format_gib(self.system.free_vram_bytes)}"
        return line + ")"


def kv_cache_bytes(meta: GgufMetadata, n_ctx: int) -> int:
    """Bytes of an f16 KV cache holding ``n_ctx`` tokens for this model."""
    n_layer = meta.block_count or 0
    n_head = meta.head_count or 0
    n_embd = meta.embedding_length or 0
    if not (n_layer and n_head and n_embd):
        return 0
    n_head_kv = meta.head_count_kv or n_head
    head_dim = n_embd // n_head
    return KV_BYTES_PER_ELEMENT * 2 * n_layer * n_ctx * n_head_kv * head_dim


def estimate_model_memory(meta: GgufMetadata, n_ctx: int, gpu_layers: int = 0) -> ModelMemory:
    """Memory one model needs at context ``n_ctx`` with ``gpu_layers`` offloaded (-1: all)."""
    n_layer = meta.block_count or 0
    offloaded = n_layer if gpu_layers < 0 else min(gpu_layers, n_layer)
    return ModelMemory(
        name=meta.name,
        weights_bytes=meta.file_size,
        kv_cache_bytes=kv_cache_bytes(meta, n_ctx),
        overhead_bytes=RUNTIME_OVERHEAD_BYTES + int(meta.file_size * RUNTIME_OVERHEAD_FRACTION),
        n_ctx=n_ctx,
        n_layer=n_layer,
        gpu_layers=offloaded,
    )


def check_memory_fit(models: list[ModelMemory], system: SystemMemory | None = None) -> MemoryFit:
    """Compare what ``models`` need together with what the machine has free.

    ``warning`` is None when they fit comfortably; otherwise it says what is short
    or tight, in words a user can act on.
    """
    system = system or read_system_memory()
    ram_needed = sum(model.ram_bytes for model in models)
    vram_needed = sum(model.vram_bytes for model in models)
    problems: list[str] = []
    tight: list[str] = []
    if ram_needed > system.available_ram_bytes:
        problems.append(
            f"needs {format_gib(ram_needed)} of RAM but only "
            f"{format_gib(system.available_ram_bytes)} is available"
        )
    elif ram_needed > TIGHT_FRACTION * system.available_ram_bytes:
        tight.append(f"RAM ({format_gib(ram_needed)} of {format_gib(system.available_ram_bytes)})")
    if vram_needed:
        if system.free_vram_bytes is None:
            tight.append(f"VRAM (needs {format_gib(vram_needed)}, free amount unknown)")
        elif vram_needed > system.free_vram_bytes:
            problems.append(
                f"needs {format_gib(vram_needed)} of VRAM but only "
                f"{format_gib(system.free_vram_bytes)} is free; offload fewer layers"
            )
        elif vram_needed > TIGHT_FRACTION * system.free_vram_bytes:
            tight.append(
                f"VRAM ({format_gib(vram_needed)} of {format_gib(system.free_vram_bytes)})"
            )
    warning: str | None = None
    if problems:
        warning = (
            "will not fit: " + "; ".join(problems) + ". Use a smaller context, a smaller "
            "quantization, or a smaller draft"
        )
    elif tight:
        warning = "memory is tight: " + ", ".join(tight)
    return MemoryFit(tuple(models), system, not problems, warning)


def _read_meminfo(path: Path = Path("/proc/meminfo")) -> tuple[int, int] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024  # values are in kB
    if "MemTotal" not in fields:
        return None
    return fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))


def _read_windows_memory() -> tuple[int, int] | None:
    if sys.platform != "win32":
        return None
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return None
    return int(status.ullTotalPhys), int(status.ullAvailPhys)


def _read_sysconf_memory() -> tuple[int, int] | None:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
    except (ValueError, OSError, AttributeError):
        return None
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * page
    except (ValueError, OSError):
        # macOS has no "available pages"; file cache is reclaimable, so most is usable.
        available = int(total * 0.7)
    return total, available


def detect_free_vram_bytes() -> int | None:
    """Free memory of the first NVIDIA GPU via nvidia-smi, or None if there is none."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        result = subprocess.run(
            [executable, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        first_gpu_mib = int(result.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        logger.info("cannot query GPU memory with nvidia-smi: %s", exc)
        return None
    return first_gpu_mib << 20


def read_system_memory(query_gpu: bool = True) -> SystemMemory:
    """Total and available RAM, and free VRAM when an NVIDIA GPU answers."""
    ram = _read_meminfo() or _read_windows_memory() or _read_sysconf_memory() or (0, 0)
    vram = detect_free_vram_bytes() if query_gpu else None
    return SystemMemory(total_ram_bytes=ram[0], available_ram_bytes=ram[1], free_vram_bytes=vram)


def check_pair_fit(
    target: GgufMetadata,
    draft: GgufMetadata | None,
    n_ctx: int,
    draft_n_ctx: int | None = None,
    target_gpu_layers: int = 0,
    draft_gpu_layers: int = 0,
    system: SystemMemory | None = None,
) -> MemoryFit:
    """Will this target (and draft) fit at these contexts and GPU layer counts?

    The draft's context defaults to the target's, as in llama.cpp.
    """
    models = [estimate_model_memory(target, n_ctx, target_gpu_layers)]
    if draft is not None:
        models.append(estimate_model_memory(draft, draft_n_ctx or n_ctx, draft_gpu_layers))
    return check_memory_fit(models, system)
