"""Where SpecChat keeps its files: the platform's standard folders.

``SPECCHAT_HOME`` moves all of them under one folder; the tests use it so they never
touch a user's real settings, conversations or models.

A folder that cannot be created (``SPECCHAT_HOME`` names a file, a read-only disk)
raises ``AppFolderError``, whose message names the folder, ``SPECCHAT_HOME`` when it
is set, what is wrong and what to do.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

from core.errors import AppFolderError

APP_NAME = "SpecChat"
HOME_ENV = "SPECCHAT_HOME"


def home_override() -> Path | None:
    """The folder ``SPECCHAT_HOME`` names, or None when it is not set."""
    root = os.environ.get(HOME_ENV)
    return Path(root) if root else None


def _fix(place: str = "it") -> str:
    """What to do about a folder SpecChat cannot use."""
    if home_override() is not None:
        return _fix_by_home()
    return f"make {place} writable, or {_fix_by_home()}"


def _fix_by_home() -> str:
    verb = "point" if home_override() is not None else "set"
    joiner = "at" if home_override() is not None else "to"
    return f"{verb} {HOME_ENV} {joiner} a writable folder"


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (the root at worst)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def same_path(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file, through ``~``, ``..`` and links (neither
    need exist)."""
    return a.expanduser().resolve() == b.expanduser().resolve()


def missing_folders(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first."""
    existing = nearest_existing(path)
    return [path, *path.parents][: len(path.parts) - len(existing.parts)]


def _blocking_file(path: Path) -> Path | None:
    """The file standing where ``path`` or one of its parents should be a folder."""
    existing = nearest_existing(path)
    return None if existing.is_dir() else existing


def folder_problem(path: Path, what: str, exc: OSError) -> AppFolderError:
    """The error for ``path`` (SpecChat's ``what`` folder) that could not be created."""
    home = home_override()
    blocker = _blocking_file(path)
    if home is not None and blocker == home:
        message = f"SpecChat's home {home} ({HOME_ENV}) is a file, not a folder: {_fix()}"
    elif blocker is not None:
        message = (
            f"SpecChat cannot create its {what} folder {path}: {blocker} is a file, not a "
            f"folder; move that file away, or {_fix_by_home()}"
        )
    else:
        reason = (exc.strerror or str(exc)).lower()
        if home is not None:
            advice = f"SpecChat's home {home} ({HOME_ENV}) must be writable: {_fix()}"
        else:
            advice = _fix(f"{path.parent}")
        message = f"SpecChat cannot create its {what} folder {path}: {reason}; {advice}"
    return AppFolderError(message)


def _made(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_problem(path, what, exc) from exc
    return path


def _folder(name: str, platform_folder: Callable[..., str]) -> Path:
    home = home_override()
    path = home / name if home is not None else Path(platform_folder(APP_NAME, appauthor=False))
    return _made(path, name)


def app_folders() -> list[Path]:
    """Every folder SpecChat writes to (not created): for explaining a failed write."""
    home = home_override()
    if home is not None:
        return [home]
    return [
        Path(folder(APP_NAME, appauthor=False))
        for folder in (
            platformdirs.user_data_dir,
            platformdirs.user_config_dir,
            platformdirs.user_cache_dir,
            platformdirs.user_log_dir,
        )
    ]


def explain_write_failure(exc: OSError) -> str | None:
    """One sentence for a failed write inside SpecChat's folders (read-only disk, no
    permission), naming the folder and what to do; None for any other failure."""
    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not exc.filename:
        return None
    failed = Path(os.fsdecode(exc.filename))
    for folder in app_folders():
        if failed == folder or folder in failed.parents:
            reason = (exc.strerror or str(exc)).lower()
            if home_override() is not None:
                return (
                    f"cannot write {failed}: {reason}; SpecChat's home {folder} ({HOME_ENV}) "
                    f"must be writable: {_fix()}"
                )
            return f"cannot write {failed}: {reason}; {_fix(str(folder))}"
    return None


def data_dir() -> Path:
    """Persistent user data: conversations database, downloaded models."""
    return _folder("data", platformdirs.user_data_dir)


def config_dir() -> Path:
    """Settings files."""
    return _folder("config", platformdirs.user_config_dir)


def cache_dir() -> Path:
    """Re-creatable files, e.g. the demo model pair built on first use."""
    return _folder("cache", platformdirs.user_cache_dir)


def log_dir() -> Path:
    return _folder("logs", platformdirs.user_log_dir)


def models_dir() -> Path:
    """The app's own models folder, where downloads land."""
    return _made(data_dir() / "models", "models")
