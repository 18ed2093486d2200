"""A repository's GGUF files: sizes, checksums, quantization, and which fits here."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.hub.client import HubClient
from core.hub.quant import FULL_PRECISION, quantization_from_filename
from core.library.memory import read_system_memory

# Weights plus a KV cache, compute buffers and the rest of the system: a file fits
# when it takes at most this share of the memory budget.
FIT_SHARE_OF_MEMORY = 0.8


@dataclass(frozen=True)
class HubFile:
    """One GGUF file in a repository."""

    filename: str
    size: int | None
    sha256: str | None
    quantization: str | None
    fits_memory: bool | None = None
    recommended: bool = False


@dataclass(frozen=True)
class RepoFiles:
    """A repository's GGUF files at one commit."""

    repo_id: str
    commit: str | None
    gated: bool
    files: tuple[HubFile, ...]

    @property
    def recommended(self) -> HubFile | None:
        return next((file for file in self.files if file.recommended), None)


def machine_memory_budget() -> int:
    """Bytes a model may use here: total RAM plus free VRAM, when known."""
    system = read_system_memory()
    return system.total_ram_bytes + (system.free_vram_bytes or 0)


def mark_fitting_files(files: list[HubFile], budget_bytes: int) -> list[HubFile]:
    """Mark which files fit ``budget_bytes`` and recommend one.

    The recommendation is the largest quantized file that fits (best quality the
    machine can hold); full-precision files only when nothing quantized fits.
    """
    limit = budget_bytes * FIT_SHARE_OF_MEMORY
    marked = [
        replace(file, fits_memory=None if file.size is None else file.size <= limit)
        for file in files
    ]
    fitting = [file for file in marked if file.fits_memory]
    quantized = [file for file in fitting if file.quantization not in FULL_PRECISION]
    pool = quantized or fitting
    if not pool:
        return marked
    best = max(pool, key=lambda file: file.size or 0)
    return [replace(file, recommended=file is best) for file in marked]


def list_gguf_files(
    client: HubClient,
    repo_id: str,
    revision: str | None = None,
    memory_budget_bytes: int | None = None,
) -> RepoFiles:
    """The repository's GGUF files with size, LFS SHA-256 and quantization label.

    Args:
        memory_budget_bytes: memory to judge fit against; default: this machine's.

    Raises:
        HubError: subclass naming gated, missing, network or rate-limit problems.
    """
    info = client.model_info(repo_id, revision=revision)
    files = [
        HubFile(
            filename=sibling.rfilename,
            size=sibling.lfs.size if sibling.lfs else sibling.size,
            sha256=sibling.lfs.sha256 if sibling.lfs else None,
            quantization=quantization_from_filename(sibling.rfilename),
        )
        for sibling in info.siblings or []
        if sibling.rfilename.lower().endswith(".gguf")
    ]
    budget = memory_budget_bytes if memory_budget_bytes is not None else machine_memory_budget()
    return RepoFiles(
        repo_id=info.id,
        commit=info.sha,
        gated=bool(info.gated),
        files=tuple(mark_fitting_files(sorted(files, key=lambda f: f.filename), budget)),
    )
