"""Where SpecChat keeps its files: the platform's standard folders.

``SPECCHAT_HOME`` moves all of them under one folder; the tests use it so they never
touch a user's real settings, conversations or models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

APP_NAME = "SpecChat"
HOME_ENV = "SPECCHAT_HOME"


def _folder(name: str, platform_folder: Callable[..., str]) -> Path:
    root = os.environ.get(HOME_ENV)
    path = Path(root) / name if root else Path(platform_folder(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


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
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
