"""The local model library: every GGUF file the app can see, read in place.

Sources are the app's models folder, folders the user added and the standard
Hugging Face cache (``models--owner--name/snapshots/<commit>/...``). Only GGUF
headers are read, never weights. A broken or partial file becomes an entry with
the reason instead of stopping the scan.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from huggingface_hub import constants as hf_constants

from core.errors import ModelFileError
from core.gguf_meta import GgufMetadata, read_gguf_metadata
from core.hub.quant import is_later_shard
from core.library import folders
from core.paths import models_dir

logger = logging.getLogger(__name__)

HF_REPO_DIR_PREFIX = "models--"


class ModelSource(Enum):
    APP_FOLDER = "app models folder"
    USER_FOLDER = "user folder"
    DEMO_PAIR = "demo pair"  # the folder the demo pair is written to, once added
    HF_CACHE = "Hugging Face cache"


@dataclass(frozen=True)
class ModelEntry:
    """One GGUF file: its metadata, or why it cannot be used."""

    path: Path
    source: ModelSource
    file_size: int
    metadata: GgufMetadata | None = None
    error: str | None = None
    repo_id: str | None = None

    @property
    def usable(self) -> bool:
        return self.metadata is not None

    @property
    def display_name(self) -> str:
        return self.metadata.name if self.metadata else self.path.name

    @property
    def vocab_fingerprint(self) -> str | None:
        return self.metadata.vocab.fingerprint if self.metadata else None


def default_hf_cache_dir() -> Path:
    """The Hugging Face cache, from the environment at call time.

    huggingface_hub reads ``HF_HUB_CACHE``/``HF_HOME`` once at import; reading them
    here again lets a test or a user move the cache without restarting.
    """
    if cache := os.environ.get("HF_HUB_CACHE"):
        return Path(cache).expanduser()
    if home := os.environ.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    return Path(hf_constants.HF_HUB_CACHE)


def _gguf_files_in(folder: Path) -> Iterator[Path]:
    """GGUF files below ``folder``, skipping hidden folders (partial downloads live there)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(".gguf") and not is_later_shard(name):
                yield Path(root) / name


def _hf_cache_files(cache: Path) -> Iterator[tuple[Path, str]]:
    """(snapshot file, repo id) for every GGUF file in the Hugging Face cache."""
    if not cache.is_dir():
        return
    for repo_dir in sorted(cache.glob(f"{HF_REPO_DIR_PREFIX}*")):
        repo_id = repo_dir.name.removeprefix(HF_REPO_DIR_PREFIX).replace("--", "/")
        snapshots = repo_dir / "snapshots"
        if not snapshots.is_dir():
            continue
        for snapshot in sorted(snapshots.iterdir()):
            for path in _gguf_files_in(snapshot):
                yield path, repo_id


class ModelLibrary:
    """Scans the model sources; unchanged files are not read twice.

    Args:
        app_folder: the app's models folder (default: ``core.paths.models_dir()``).
        user_folders: folders the user added (default: the saved list).
        hf_cache: the Hugging Face cache (default: ``default_hf_cache_dir()``).
    """

    def __init__(
        self,
        app_folder: Path | None = None,
        user_folders: Iterable[Path] | None = None,
        hf_cache: Path | None = None,
    ) -> None:
        self.app_folder = app_folder or models_dir()
        self.user_folders = list(user_folders) if user_folders is not None else None
        self.hf_cache = hf_cache or default_hf_cache_dir()
        self._cache: dict[Path, tuple[tuple[int, int], ModelEntry]] = {}

    def _sources(self) -> Iterator[tuple[Path, ModelSource, str | None]]:
        user = self.user_folders if self.user_folders is not None else folders.user_folders()
        for path in _gguf_files_in(self.app_folder):
            yield path, ModelSource.APP_FOLDER, None
        # Imported here: core.demo_models reaches this module through core.hub.
        from core.demo_models import demo_dir_path

        demo = _resolved(demo_dir_path())
        for folder in user:
            if not folder.is_dir():
                logger.info("library folder %s is missing; skipped", folder)
                continue
            source = ModelSource.DEMO_PAIR if _resolved(folder) == demo else ModelSource.USER_FOLDER
            for path in _gguf_files_in(folder):
                yield path, source, None
        for path, repo_id in _hf_cache_files(self.hf_cache):
            yield path, ModelSource.HF_CACHE, repo_id

    def iter_scan(self, stop: threading.Event | None = None) -> Iterator[ModelEntry]:
        """Yield one entry per model file; stops early once ``stop`` is set."""
        seen: set[Path] = set()
        for path, source, repo_id in self._sources():
            if stop is not None and stop.is_set():
                return
            # The same file can be reached twice (a user folder inside the app's folder,
            # one blob in two HF snapshots): list it once.
            identity = path.resolve()
            if identity in seen:
                continue
            seen.add(identity)
            yield self._entry(path, source, repo_id)

    def scan(self, stop: threading.Event | None = None) -> list[ModelEntry]:
        """All entries, in source order."""
        return list(self.iter_scan(stop))

    def _entry(self, path: Path, source: ModelSource, repo_id: str | None) -> ModelEntry:
        try:
            stat = path.stat()
        except OSError:
            reason = "file missing (a broken link: the download did not finish?)"
            return ModelEntry(path, source, 0, error=reason, repo_id=repo_id)
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        entry = self._read(path, source, repo_id, stat.st_size)
        self._cache[path] = (key, entry)
        return entry

    @staticmethod
    def _read(path: Path, source: ModelSource, repo_id: str | None, size: int) -> ModelEntry:
        try:
            metadata = read_gguf_metadata(path)
        except ModelFileError as exc:
            error = _without_file_name(str(exc), path)
            return ModelEntry(path, source, size, error=error, repo_id=repo_id)
        except Exception as exc:
            # A file the parser trips over must not end the scan of everything else.
            logger.exception("unexpected error reading %s", path)
            reason = f"unreadable: {type(exc).__name__}: {exc}"
            return ModelEntry(path, source, size, error=reason, repo_id=repo_id)
        return ModelEntry(path, source, size, metadata=metadata, repo_id=repo_id)


def _without_file_name(message: str, path: Path) -> str:
    """The reason alone: the reader names the file ("x.gguf: file is truncated"), and
    every front end shows the entry's path beside it already; a long path in front
    of the reason pushed the reason out of sight in a table cell."""
    for name in (str(path), path.name):
        if message.startswith(f"{name}: "):
            return message[len(name) + 2 :]
    return message


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()
