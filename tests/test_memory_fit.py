"""Memory estimates for a target/draft pair and the fit verdict."""

from __future__ import annotations

from pathlib import Path

from core.gguf_meta import GgufMetadata, read_gguf_metadata
from core.library.memory import (
    GIB,
    SystemMemory,
    _read_meminfo,
    check_pair_fit,
    estimate_model_memory,
    kv_cache_bytes,
    read_system_memory,
)
from tests.support.hub_models import ModelBytes

pytest_plugins = ["tests.hub_fixtures"]


def metadata(tmp_path: Path, content: bytes, name: str) -> GgufMetadata:
    path = tmp_path / name
    path.write_bytes(content)
    return read_gguf_metadata(path)


def test_kv_cache_follows_the_f16_formula(tmp_path: Path, model_bytes: ModelBytes) -> None:
    target = metadata(tmp_path, model_bytes.target, "t.gguf")
    # 4 layers, 2 KV heads of 128/4 = 32 dims, 2 bytes, K and V.
    assert kv_cache_bytes(target, 4096) == 2 * 2 * 4 * 4096 * 2 * 32


def test_gpu_layers_move_weights_and_cache_to_vram(tmp_path: Path, model_bytes: ModelBytes) -> None:
    target = metadata(tmp_path, model_bytes.target, "t.gguf")
    on_cpu = estimate_model_memory(target, 2048, gpu_layers=0)
    half = estimate_model_memory(target, 2048, gpu_layers=2)
    all_layers = estimate_model_memory(target, 2048, gpu_layers=-1)
    assert on_cpu.vram_bytes == 0 and on_cpu.ram_bytes == on_cpu.total_bytes
    assert half.vram_bytes == (half.weights_bytes + half.kv_cache_bytes) // 2
    assert all_layers.gpu_layers == 4
    assert all_layers.ram_bytes == all_layers.overhead_bytes
    assert on_cpu.total_bytes == half.total_bytes == all_layers.total_bytes


def test_fit_verdicts(tmp_path: Path, model_bytes: ModelBytes) -> None:
    target = metadata(tmp_path, model_bytes.target, "t.gguf")
    draft = metadata(tmp_path, model_bytes.draft, "d.gguf")
    roomy = SystemMemory(64 * GIB, 32 * GIB, None)
    fit = check_pair_fit(target, draft, n_ctx=4096, system=roomy)
    assert fit.fits and fit.warning is None
    assert len(fit.models) == 2 and fit.models[1].n_ctx == 4096

    needed = fit.ram_needed_bytes
    short = SystemMemory(64 * GIB, needed - 1, None)
    refused = check_pair_fit(target, draft, n_ctx=4096, system=short)
    assert not refused.fits
    assert refused.warning is not None and refused.warning.startswith("will not fit")
    assert "RAM" in refused.warning

    tight = check_pair_fit(target, draft, 4096, system=SystemMemory(GIB, int(needed / 0.95), None))
    assert tight.fits and tight.warning is not None and "tight" in tight.warning

    no_vram = SystemMemory(64 * GIB, 32 * GIB, free_vram_bytes=1 << 20)
    offloaded = check_pair_fit(target, draft, 4096, target_gpu_layers=-1, system=no_vram)
    assert not offloaded.fits and "VRAM" in (offloaded.warning or "")
    unknown_gpu = check_pair_fit(target, None, 4096, target_gpu_layers=-1, system=roomy)
    assert unknown_gpu.fits and "unknown" in (unknown_gpu.warning or "")
    assert "RAM" in unknown_gpu.summary()


def test_system_memory_is_read(tmp_path: Path) -> None:
    memory = read_system_memory(query_gpu=False)
    assert memory.total_ram_bytes >= memory.available_ram_bytes > 0
    sample = tmp_path / "meminfo"
    sample.write_text("MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable:   8192 kB\n")
    assert _read_meminfo(sample) == (16384 * 1024, 8192 * 1024)
