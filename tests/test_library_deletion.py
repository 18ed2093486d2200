"""Deleting models: only files in the app's own folder, every shard, empty folders too."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.library.deletion import DeleteRefusedError, can_delete, delete_model, model_files
from core.library.scan import ModelEntry, ModelSource


def entry(path: Path, source: ModelSource) -> ModelEntry:
    return ModelEntry(path, source, path.stat().st_size)


def test_deletes_all_shards_and_empty_folders_of_a_downloaded_model(tmp_path: Path) -> None:
    app = tmp_path / "models"
    folder = app / "owner" / "repo"
    folder.mkdir(parents=True)
    shards = [folder / f"m-0000{i}-of-00002.gguf" for i in (1, 2)]
    for shard in shards:
        shard.write_bytes(b"x")
    assert model_files(shards[0]) == shards

    removed = delete_model(entry(shards[0], ModelSource.APP_FOLDER), app)

    assert removed == shards
    assert not (app / "owner").exists() and app.exists()


def test_refuses_files_the_app_did_not_download(tmp_path: Path) -> None:
    app = tmp_path / "models"
    app.mkdir()
    theirs = tmp_path / "mine" / "m.gguf"
    theirs.parent.mkdir()
    theirs.write_bytes(b"x")
    for source in (ModelSource.USER_FOLDER, ModelSource.HF_CACHE, ModelSource.APP_FOLDER):
        assert not can_delete(entry(theirs, source), app)
        with pytest.raises(DeleteRefusedError, match="not downloaded by SpecChat"):
            delete_model(entry(theirs, source), app)
    assert theirs.exists()
