"""Settings persist in the config folder, per model pair, and notify listeners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.engine.config import DraftSource, GenerationSettings, ModelConfig
from core.errors import ConfigError
from core.paths import config_dir
from core.settings import (
    MARKDOWN_DEFAULT,
    SHOW_REJECTED_DRAFTS,
    THEME_MODE,
    LoadRequest,
    ModelOptions,
    PairSettings,
    SettingsStore,
    pair_key,
    shared_settings,
    with_knob,
)


def model_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(b"\0" * size)
    return path


def test_app_settings_default_persist_and_notify(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    seen: list[tuple[str, object]] = []
    unsubscribe = store.subscribe(lambda key, value: seen.append((key, value)))
    assert store.get(THEME_MODE) == "system"
    assert store.get(SHOW_REJECTED_DRAFTS) is False

    store.set(THEME_MODE, "dark")
    store.set(THEME_MODE, "dark")  # unchanged: no second notification
    store.set(SHOW_REJECTED_DRAFTS, True)
    unsubscribe()
    store.set(MARKDOWN_DEFAULT, False)

    assert seen == [("theme_mode", "dark"), ("show_rejected_drafts", True)]
    again = SettingsStore(path)
    assert again.get(THEME_MODE) == "dark"
    assert again.get(SHOW_REJECTED_DRAFTS) is True
    assert again.get(MARKDOWN_DEFAULT) is False


def test_invalid_values_are_refused_and_bad_files_cost_only_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    with pytest.raises(ConfigError):
        store.set(THEME_MODE, "purple")
    assert not path.exists()

    path.write_text(json.dumps({"app": {"theme_mode": "purple", "markdown_default": False}}))
    assert SettingsStore(path).get(THEME_MODE) == "system"
    assert SettingsStore(path).get(MARKDOWN_DEFAULT) is False
    path.write_text("{ not json")
    assert SettingsStore(path).get(MARKDOWN_DEFAULT) is True


def test_a_failing_listener_does_not_stop_the_others(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    seen: list[str] = []

    def broken(key: str, value: object) -> None:
        raise RuntimeError("boom")

    store.subscribe(broken)
    store.subscribe(lambda key, value: seen.append(key))
    store.set(THEME_MODE, "light")
    assert seen == ["theme_mode"]


def test_pair_keys_use_file_names_sizes_and_the_draft_source(tmp_path: Path) -> None:
    target = model_file(tmp_path, "target.gguf", 100)
    draft = model_file(tmp_path, "draft.gguf", 10)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    same_target_elsewhere = model_file(moved, "target.gguf", 100)
    requantised = model_file(moved / "..", "target-q8.gguf", 50)

    key = pair_key(target, draft, DraftSource.MODEL)
    assert key == "target.gguf:100|draft.gguf:10"
    assert pair_key(same_target_elsewhere, draft, "model") == key
    assert pair_key(requantised, draft, "model") != key
    assert pair_key(target, None, DraftSource.NGRAM) == "target.gguf:100|ngram"
    assert pair_key(target, None, DraftSource.NONE) == "target.gguf:100|none"


def test_generation_settings_persist_per_pair(tmp_path: Path) -> None:
    target = model_file(tmp_path, "target.gguf", 100)
    draft = model_file(tmp_path, "draft.gguf", 10)
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    seen: list[str] = []
    store.subscribe(lambda key, value: seen.append(key))
    key = pair_key(target, draft, "model")
    tuned = with_knob(with_knob(GenerationSettings(), "draft_max", 4), "p_min", 0.75)

    store.set_pair_settings(key, PairSettings(tuned, n_threads=2))

    assert seen == [f"pair:{key}"]
    again = SettingsStore(path)
    assert again.generation_settings(key) == tuned
    assert again.pair_settings(key).n_threads == 2
    other = pair_key(target, None, "ngram")
    assert again.generation_settings(other) == GenerationSettings()


def test_model_options_and_last_load_request_persist(tmp_path: Path) -> None:
    target = model_file(tmp_path, "target.gguf", 100)
    draft = model_file(tmp_path, "draft.gguf", 10)
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    assert store.last_load_request() is None
    store.set_model_options(target, ModelOptions(n_gpu_layers=12, n_ctx=2048))
    request = LoadRequest(
        ModelConfig(target, n_gpu_layers=12, n_ctx=2048, n_threads=3),
        ModelConfig(draft, n_threads=3),
        DraftSource.MODEL,
    )
    store.set_last_load_request(request)

    again = SettingsStore(path)
    assert again.model_options(target) == ModelOptions(12, 2048)
    assert again.model_options(draft) == ModelOptions()
    assert again.last_load_request() == request
    with pytest.raises(ConfigError):
        ModelOptions(n_gpu_layers=-2)


def test_load_request_rules(tmp_path: Path) -> None:
    target = ModelConfig(model_file(tmp_path, "t.gguf", 4))
    draft = ModelConfig(model_file(tmp_path, "d.gguf", 2))
    with pytest.raises(ConfigError, match="needs a draft model"):
        LoadRequest(target, None, DraftSource.MODEL)
    with pytest.raises(ConfigError, match="takes no draft model"):
        LoadRequest(target, draft, DraftSource.NGRAM)
    ngram = LoadRequest(target, None, "ngram")  # type: ignore[arg-type]
    assert ngram.draft_source is DraftSource.NGRAM
    assert LoadRequest.from_dict(ngram.to_dict()) == ngram
    assert ngram.describe() == "t.gguf + n-gram lookup"
    with pytest.raises(ConfigError):
        LoadRequest.from_dict({"target": {"path": "x.gguf", "n_ctx": "big"}})


def test_shared_store_lives_in_the_config_folder_and_is_shared() -> None:
    store = shared_settings()
    assert store is shared_settings()
    assert store.path.parent == config_dir()
    store.set(THEME_MODE, "light")
    assert json.loads(store.path.read_text())["app"]["theme_mode"] == "light"
