"""Fixtures for the store and chat tests: a fresh conversations database.

Test modules load them with ``pytest_plugins = ["tests.store_fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import ConversationStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(tmp_path / "conversations.sqlite3") as opened:
        yield opened
