"""Settings persisted as one JSON file in the platform's config folder.

Holds the application settings (``core.settings.app_settings``), the settings
tuned for each model pair, the GPU layers and context chosen for each model, and
the last pair loaded. Every value is validated on the way in and on the way out:
a damaged or hand-edited file costs the bad values, never the start of the app.
Listeners are plain callables, so the store works the same without Qt.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.engine.config import GenerationSettings
from core.errors import ConfigError
from core.paths import config_dir
from core.settings.generation import PairSettings
from core.settings.load_request import LoadRequest
from core.settings.pair_keys import model_identity
from core.settings.schema import Setting

logger = logging.getLogger(__name__)

SETTINGS_FILE_NAME = "settings.json"
FORMAT_VERSION = 1
PAIR_KEY_PREFIX = "pair:"
MODEL_KEY_PREFIX = "model:"
LAST_LOAD_KEY = "last_load"

T = TypeVar("T", bool, int, float, str)
Listener = Callable[[str, Any], None]


@dataclass(frozen=True)
class ModelOptions:
    """Load options remembered for one model file."""

    n_gpu_layers: int = -1
    n_ctx: int = 0

    def __post_init__(self) -> None:
        for name in ("n_gpu_layers", "n_ctx"):
            if type(getattr(self, name)) is not int:
                raise ConfigError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if self.n_gpu_layers < -1:
            raise ConfigError(f"GPU layers must be -1 (all) or more, got {self.n_gpu_layers}")
        if self.n_ctx < 0:
            raise ConfigError(f"context size must be >= 0, got {self.n_ctx}")


class SettingsStore:
    """Reads and writes ``settings.json``; tells listeners what changed.

    Args:
        path: the JSON file (default: ``config_dir() / "settings.json"``).

    Listeners are called as ``listener(key, value)`` after a change is saved: the
    setting's key for app settings, ``"pair:<pair key>"`` with a PairSettings,
    ``"model:<model key>"`` with ModelOptions, and ``"last_load"`` with a LoadRequest.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / SETTINGS_FILE_NAME
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._data = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable settings file %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            logger.warning("ignoring settings file %s: not a JSON object", self.path)
            return {}
        return data

    def _save(self) -> None:
        with self._lock:
            self._data["version"] = FORMAT_VERSION
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._data, indent=2, sort_keys=True), "utf-8")
            temporary.replace(self.path)  # atomic: a crash never leaves half a file

    def _section(self, name: str) -> dict[str, Any]:
        section = self._data.get(name)
        if not isinstance(section, dict):
            section = self._data[name] = {}
        return section

    def _notify(self, key: str, value: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(key, value)
            except Exception:
                # One broken listener must not stop the others from hearing of the change.
                logger.exception("settings listener %r failed for %s", listener, key)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(key, value)`` after each change; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # Application settings

    def get(self, setting: Setting[T]) -> T:
        """The saved value, or the default when none (or an invalid one) is saved."""
        app = self._data.get("app")
        if not isinstance(app, dict) or setting.key not in app:
            return setting.default
        try:
            return setting.validate(app[setting.key])
        except ConfigError as exc:
            logger.warning("using the default for %s: %s", setting.key, exc)
            return setting.default

    def set(self, setting: Setting[T], value: T) -> None:
        """Validate (ConfigError if invalid), save and notify; no-op if unchanged."""
        value = setting.validate(value)
        if self.get(setting) == value and setting.key in self._section("app"):
            return
        self._section("app")[setting.key] = value
        self._save()
        self._notify(setting.key, value)

    def reset(self, setting: Setting[T]) -> None:
        """Back to the default."""
        self.set(setting, setting.default)

    # Per model pair

    def pair_settings(self, key: str) -> PairSettings:
        """What was tuned for this pair (``LoadRequest.pair_key``), or the defaults."""
        saved = self._data.get("pairs", {})
        if not isinstance(saved, dict) or key not in saved:
            return PairSettings()
        try:
            return PairSettings.from_dict(saved[key])
        except ConfigError as exc:
            logger.warning("using default settings for pair %s: %s", key, exc)
            return PairSettings()

    def set_pair_settings(self, key: str, settings: PairSettings) -> None:
        data = settings.to_dict()
        if self._section("pairs").get(key) == data:
            return
        self._section("pairs")[key] = data
        self._save()
        self._notify(PAIR_KEY_PREFIX + key, settings)

    def generation_settings(self, key: str) -> GenerationSettings:
        """Shortcut: the pair's GenerationSettings."""
        return self.pair_settings(key).generation

    # Per model file

    def model_options(self, path: Path) -> ModelOptions:
        """GPU layers and context last chosen for this model file, or the defaults."""
        saved = self._data.get("models", {})
        key = model_identity(path)
        if not isinstance(saved, dict) or not isinstance(saved.get(key), dict):
            return ModelOptions()
        try:
            return ModelOptions(
                **{k: v for k, v in saved[key].items() if k in ("n_gpu_layers", "n_ctx")}
            )
        except ConfigError as exc:
            logger.warning("using default options for %s: %s", key, exc)
            return ModelOptions()

    def set_model_options(self, path: Path, options: ModelOptions) -> None:
        key = model_identity(path)
        data = {"n_gpu_layers": options.n_gpu_layers, "n_ctx": options.n_ctx}
        if self._section("models").get(key) == data:
            return
        self._section("models")[key] = data
        self._save()
        self._notify(MODEL_KEY_PREFIX + key, options)

    # The last pair loaded, offered again at the next start

    def last_load_request(self) -> LoadRequest | None:
        data = self._data.get(LAST_LOAD_KEY)
        if data is None:
            return None
        try:
            return LoadRequest.from_dict(data)
        except ConfigError as exc:
            logger.warning("forgetting the last loaded pair: %s", exc)
            return None

    def set_last_load_request(self, request: LoadRequest | None) -> None:
        self._data[LAST_LOAD_KEY] = request.to_dict() if request else None
        self._save()
        self._notify(LAST_LOAD_KEY, request)


_shared: dict[Path, SettingsStore] = {}
_shared_lock = threading.Lock()


def shared_settings() -> SettingsStore:
    """The one store for this process's config folder.

    Everyone in the app shares it, so two parts never overwrite each other's
    changes from stale copies. Keyed by path: tests that move ``SPECCHAT_HOME``
    get a fresh store each.
    """
    path = config_dir() / SETTINGS_FILE_NAME
    with _shared_lock:
        store = _shared.get(path)
        if store is None:
            store = _shared[path] = SettingsStore(path)
        return store
