"""Where SpecChat keeps its files: the platform's standard folders.

``SPECCHAT_HOME`` moves all of them under one folder; the tests use it so they never
touch a user's real settings, conversations or models.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "SpecChat"
HOME_ENV = "SPECCHAT_HOME"


def _override() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value) if value else None


def data_dir() -> Path:
    """Persistent user data: conversations database, downloaded models."""
    root = _override()
    path = root / "data" if root else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Settings files."""
    root = _override()
    path = (
        root / "config" if root else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Re-creatable files, e.g. the demo model pair built on first use."""
    root = _override()
    path = root / "cache" if root else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    root = _override()
    path = root / "logs" if root else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """The app's own models folder, where downloads land."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
