"""The library lists models from every source with metadata, and broken files with reasons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.demo_models import DEMO_DIR_ENV
from core.library import folders
from core.library.scan import ModelLibrary, ModelSource
from core.paths import config_dir, models_dir
from tests.support.hub_models import ModelBytes

pytest_plugins = ["tests.hub_fixtures"]


def put_in_hf_cache(cache: Path, repo_id: str, filename: str, content: bytes | None) -> Path:
    """Lay a file out as huggingface_hub does: a snapshot symlink to a blob."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    blob = repo_dir / "blobs" / f"blob-{filename}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        blob.write_bytes(content)
    link = repo_dir / "snapshots" / ("a" * 40) / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(blob, link.parent), link)
    return link


def test_scan_reads_metadata_from_all_sources(
    isolated_home: Path, model_bytes: ModelBytes, tmp_path: Path
) -> None:
    app_file = models_dir() / "org" / "repo" / "target.gguf"
    app_file.parent.mkdir(parents=True)
    app_file.write_bytes(model_bytes.target)
    user_folder = tmp_path / "my-models"
    user_folder.mkdir()
    (user_folder / "draft.gguf").write_bytes(model_bytes.draft)
    folders.add_user_folder(user_folder)
    cache_link = put_in_hf_cache(
        Path(os.environ["HF_HUB_CACHE"]), "other/Foreign-GGUF", "foreign.gguf", model_bytes.foreign
    )

    entries = {entry.path: entry for entry in ModelLibrary().scan()}

    assert set(entries) == {app_file, user_folder / "draft.gguf", cache_link}
    target = entries[app_file]
    assert target.source is ModelSource.APP_FOLDER
    assert entries[user_folder / "draft.gguf"].source is ModelSource.USER_FOLDER
    assert entries[cache_link].source is ModelSource.HF_CACHE
    assert entries[cache_link].repo_id == "other/Foreign-GGUF"
    meta = target.metadata
    assert meta is not None
    assert meta.architecture == "llama"
    assert meta.parameter_count > 100_000
    assert meta.quantization == "F32"
    assert meta.context_length == 512
    assert meta.has_chat_template
    assert target.file_size == len(model_bytes.target)
    draft_fingerprint = entries[user_folder / "draft.gguf"].vocab_fingerprint
    assert target.vocab_fingerprint == draft_fingerprint
    assert entries[cache_link].vocab_fingerprint != target.vocab_fingerprint


def test_broken_and_partial_files_are_listed_with_a_reason(
    isolated_home: Path, model_bytes: ModelBytes
) -> None:
    folder = models_dir()
    (folder / "truncated.gguf").write_bytes(model_bytes.target[: len(model_bytes.target) // 2])
    (folder / "not-gguf.gguf").write_bytes(b"<html>404</html>")
    (folder / "empty.gguf").write_bytes(b"")
    (folder / "good.gguf").write_bytes(model_bytes.draft)
    (folder / ".partial").mkdir()
    (folder / ".partial" / "x.gguf").write_bytes(model_bytes.draft[:100])
    (folder / "model-00002-of-00002.gguf").write_bytes(b"second shard")
    dangling = put_in_hf_cache(Path(os.environ["HF_HUB_CACHE"]), "o/r", "gone.gguf", None)

    entries = {entry.path.name: entry for entry in ModelLibrary().scan()}

    assert set(entries) == {
        "truncated.gguf",
        "not-gguf.gguf",
        "empty.gguf",
        "good.gguf",
        "gone.gguf",
    }
    assert entries["good.gguf"].usable
    assert "truncated" in (entries["truncated.gguf"].error or "")
    assert "not a GGUF file" in (entries["not-gguf.gguf"].error or "")
    assert entries["empty.gguf"].error
    assert entries["gone.gguf"].path == dangling
    assert "missing" in (entries["gone.gguf"].error or "")
    assert all(entry.metadata is None for name, entry in entries.items() if name != "good.gguf")


def test_unchanged_files_are_not_read_twice(
    isolated_home: Path, model_bytes: ModelBytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    (models_dir() / "good.gguf").write_bytes(model_bytes.draft)
    library = ModelLibrary(user_folders=[])
    first = library.scan()
    from core.library import scan as scan_module

    def fail(path: Path) -> None:
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(scan_module, "read_gguf_metadata", fail)
    assert library.scan() == first


def test_user_folders_persist_in_the_config_folder(isolated_home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert folders.user_folders() == []
    folders.add_user_folder(first)
    folders.add_user_folder(second)
    folders.add_user_folder(first)
    assert folders.user_folders() == [first, second]
    assert (config_dir() / folders.FOLDERS_FILE_NAME).is_file()
    assert folders.remove_user_folder(first) == [second]
    (config_dir() / folders.FOLDERS_FILE_NAME).write_text("{broken")
    assert folders.user_folders() == []


def test_missing_user_folder_and_empty_cache_are_fine(isolated_home: Path, tmp_path: Path) -> None:
    library = ModelLibrary(user_folders=[tmp_path / "gone"], hf_cache=tmp_path / "no-cache")
    assert library.scan() == []


def test_the_demo_pair_folder_is_labelled_as_the_demo_pair(
    isolated_home: Path, model_bytes: ModelBytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo-models"
    demo.mkdir()
    (demo / "target.gguf").write_bytes(model_bytes.target)
    monkeypatch.setenv(DEMO_DIR_ENV, str(demo))
    folders.add_user_folder(demo)  # as "Get the demo pair" does
    (entry,) = ModelLibrary().scan()
    assert entry.source is ModelSource.DEMO_PAIR and entry.source.value == "demo pair"


def test_a_broken_file_s_reason_does_not_repeat_its_name(
    isolated_home: Path, model_bytes: ModelBytes
) -> None:
    """The entry carries its path; a reason that began with it again ("/long/path/x.gguf:
    file is truncated") showed only the path in a table cell, the reason cut off."""
    folder = models_dir()
    (folder / "cut.gguf").write_bytes(model_bytes.target[: len(model_bytes.target) // 2])
    (folder / "web-page.gguf").write_bytes(b"<html>404</html>")

    reasons = {entry.path.name: entry.error or "" for entry in ModelLibrary().scan()}

    assert reasons["cut.gguf"].startswith("file is truncated")
    assert reasons["web-page.gguf"].startswith("not a GGUF file")
