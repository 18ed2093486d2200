"""Fixtures for the library, hub and download tests: isolated folders, a fake Hub,
an in-memory keyring and tiny GGUF model bytes.

Test modules load them with ``pytest_plugins = ["tests.hub_fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest

from core.hub.client import HubClient
from tests.support.fake_hub import FakeHub
from tests.support.hub_models import ModelBytes, build_model_bytes
from tests.support.memory_keyring import MemoryKeyring


@pytest.fixture(scope="session")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> ModelBytes:
    return build_model_bytes(tmp_path_factory.mktemp("hub-models"))


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SPECCHAT_HOME, HF_HOME and HF_HUB_CACHE under tmp_path; no HF token or endpoint."""
    monkeypatch.setenv("SPECCHAT_HOME", str(tmp_path / "specchat"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return tmp_path


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Swap the keyring backend for a dict; the real OS keyring is never consulted."""
    # Read the private slot rather than get_keyring(): that would probe the OS keyring.
    previous = keyring.core._keyring_backend
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.core._keyring_backend = previous


@pytest.fixture
def fake_hub(
    isolated_home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeHub]:
    """A running fake Hub, with HF_ENDPOINT pointing at it."""
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@pytest.fixture
def hub_client(fake_hub: FakeHub) -> HubClient:
    return HubClient(endpoint=fake_hub.url)
