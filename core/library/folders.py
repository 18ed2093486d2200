"""The model folders a user added to the library, kept in a small JSON file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from core.paths import config_dir

logger = logging.getLogger(__name__)

FOLDERS_FILE_NAME = "library_folders.json"


def _folders_file() -> Path:
    return config_dir() / FOLDERS_FILE_NAME


def user_folders() -> list[Path]:
    """Folders the user added, in the order added; a damaged file counts as none."""
    try:
        data = json.loads(_folders_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", _folders_file(), exc)
        return []
    folders = data.get("folders", []) if isinstance(data, dict) else []
    return [Path(folder) for folder in folders if isinstance(folder, str)]


def _save(folders: list[Path]) -> None:
    path = _folders_file()
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"folders": [str(f) for f in folders]}, indent=2), "utf-8")
    temporary.replace(path)  # atomic: a crash never leaves half a file


def add_user_folder(folder: Path) -> list[Path]:
    """Add a folder (stored absolute); returns the new list."""
    folder = folder.expanduser().resolve()
    folders = user_folders()
    if folder not in folders:
        folders.append(folder)
        _save(folders)
    return folders


def remove_user_folder(folder: Path) -> list[Path]:
    """Remove a folder; returns the new list."""
    folder = folder.expanduser().resolve()
    folders = [existing for existing in user_folders() if existing != folder]
    _save(folders)
    return folders
