"""Pair keys: made from files, and read back into what the user knows the pair as."""

from __future__ import annotations

from pathlib import Path

from core.engine import DraftSource
from core.settings import PairKey, pair_key


def test_a_key_made_from_files_reads_back_as_the_same_pair(tmp_path: Path) -> None:
    target, draft = tmp_path / "target.gguf", tmp_path / "draft.gguf"
    target.write_bytes(b"t" * 10)
    draft.write_bytes(b"d" * 5)
    read = PairKey.parse(pair_key(target, draft, DraftSource.MODEL))
    assert read == PairKey("target.gguf:10", "draft.gguf:5", DraftSource.MODEL)
    assert read.describe() == "target.gguf + draft.gguf"
    assert read.describe_drafting() == "the draft model draft.gguf"


def test_a_pair_without_a_draft_model_reads_back_as_its_source(tmp_path: Path) -> None:
    target = tmp_path / "t.gguf"
    target.write_bytes(b"t")
    ngram = PairKey.parse(pair_key(target, None, DraftSource.NGRAM))
    assert (ngram.draft, ngram.source) == (None, DraftSource.NGRAM)
    assert ngram.describe() == "t.gguf with n-gram lookup"
    assert PairKey.parse(pair_key(target, None, "none")).describe() == "t.gguf with no drafting"
    # A model source whose draft file was not given still names no model file.
    assert PairKey.parse(pair_key(target, None, DraftSource.MODEL)).draft is None


def test_file_names_with_colons_keep_them() -> None:
    read = PairKey.parse("a:b.gguf:10|c:d.gguf:5")
    assert read.describe() == "a:b.gguf + c:d.gguf"
