"""Deleting a model from the library: only files the app downloaded itself.

The app downloads into its own models folder; files there are the app's to
delete. Files in folders the user added, or in the Hugging Face cache (shared with
other tools), are only ever read: the library refuses to delete them.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import SpecChatError
from core.library.scan import ModelEntry, ModelSource

_SHARD = re.compile(r"^(?P<base>.+)-00001-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


class DeleteRefusedError(SpecChatError):
    """The file is not one the app downloaded, or it could not be removed."""


def can_delete(entry: ModelEntry, app_folder: Path) -> bool:
    """True for files below the app's own models folder."""
    if entry.source is not ModelSource.APP_FOLDER:
        return False
    return app_folder.resolve() in entry.path.resolve().parents


def model_files(path: Path) -> list[Path]:
    """The file, or every shard of a split model given its first shard."""
    match = _SHARD.match(path.name)
    if match is None:
        return [path]
    count = int(match["count"])
    return [
        path.with_name(f"{match['base']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)
    ]


def delete_model(entry: ModelEntry, app_folder: Path) -> list[Path]:
    """Delete a downloaded model (all its shards); returns the paths removed.

    Empty folders it leaves in the app's models folder are removed too.

    Raises:
        DeleteRefusedError: the model is not in the app's folder, or removing failed.
    """
    if not can_delete(entry, app_folder):
        raise DeleteRefusedError(
            f"{entry.path.name} was not downloaded by SpecChat ({entry.source.value}): "
            "it is only read, never deleted; remove it in your file manager if you want"
        )
    removed: list[Path] = []
    for path in model_files(entry.path):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DeleteRefusedError(f"cannot delete {path}: {exc.strerror or exc}") from exc
        removed.append(path)
    root = app_folder.resolve()
    folder = entry.path.resolve().parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return removed
