"""Checks of the model files and sizes a command line names, before anything loads.

A file error names the flag that gave the file (``-m`` or ``-md``) and the full path
as typed; a context above what the model was trained for is refused with the
numbers, instead of llama.cpp's log lines about a failed allocation.
"""

from __future__ import annotations

from pathlib import Path

from core.cli.failures import UsageError
from core.engine.model import read_model_metadata
from core.errors import ModelFileError
from core.gguf_meta import GgufMetadata

TARGET_ROLE = "the target model, -m"
DRAFT_ROLE = "the draft model, -md"


def require_file(path: Path, role: str) -> None:
    """A ModelFileError when ``path`` (``role``) is not a file; nothing is read."""
    if not path.is_file():
        what = "not a file" if path.exists() else "model file not found"
        raise ModelFileError(f"{what}: {path} ({role})")


def check_model_file(path: Path, role: str) -> GgufMetadata:
    """``path``'s metadata; a ModelFileError saying which model (``role``) it was."""
    try:
        return read_model_metadata(path)
    except ModelFileError as exc:
        message = str(exc)
        named = str(path)
        if named in message:
            message = message.replace(named, f"{named} ({role})", 1)
        else:
            message = f"{message} ({role})"
        raise ModelFileError(message) from exc


def check_context(metadata: GgufMetadata, n_ctx: int, flag: str) -> None:
    """Refuse ``flag n_ctx`` above the context ``metadata``'s model was trained for."""
    trained = metadata.context_length
    if trained and n_ctx > trained:
        raise UsageError(
            f"{flag} {n_ctx} is above the {trained} tokens {metadata.path.name} was trained "
            f"for; use {flag} {trained} or less"
        )
