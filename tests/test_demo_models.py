"""Writing the demo pair: a full disk gets a clear error and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

import core.demo_models
from core.demo_models import DemoModelError, write_q8_draft
from tests.conftest import TinyModels


def test_a_disk_too_full_for_the_draft_says_so_and_leaves_no_partial_file(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama.cpp's own message on a full disk is "basic_ios::clear: iostream error".
    monkeypatch.setattr(core.demo_models, "free_disk_bytes", lambda path: 1024)
    destination = tmp_path / "draft.gguf"
    with pytest.raises(DemoModelError, match="not enough disk space") as raised:
        write_q8_draft(tiny_models.target, destination)
    message = str(raised.value)
    assert str(tmp_path) in message
    assert "1.0 KiB free" in message
    assert list(tmp_path.iterdir()) == []


def test_a_draft_is_written_where_the_disk_has_room(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    destination = tmp_path / "draft.gguf"
    write_q8_draft(tiny_models.target, destination)
    assert destination.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["draft.gguf"]
