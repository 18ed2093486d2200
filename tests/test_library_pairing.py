"""Draft pairing uses the engine's vocabulary rules and ranks smaller drafts first."""

from __future__ import annotations

from pathlib import Path

from core.library.pairing import find_local_drafts
from core.library.scan import ModelEntry, ModelLibrary
from core.vocab import check_vocab_compatibility
from tests.support.hub_models import ModelBytes
from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

pytest_plugins = ["tests.hub_fixtures"]


def scan_folder(folder: Path) -> dict[str, ModelEntry]:
    library = ModelLibrary(app_folder=folder, user_folders=[], hf_cache=folder / "no-cache")
    return {entry.path.name: entry for entry in library.scan()}


def test_compatible_drafts_sorted_smallest_first_and_others_with_reasons(
    tmp_path: Path, model_bytes: ModelBytes
) -> None:
    (tmp_path / "target.gguf").write_bytes(model_bytes.target)
    (tmp_path / "draft-small.gguf").write_bytes(model_bytes.draft)
    write_tiny_model(tmp_path / "draft-mid.gguf", TinyModelSpec(n_embd=96, n_head=4, seed=5))
    write_tiny_model(
        tmp_path / "bigger.gguf", TinyModelSpec(n_embd=192, n_head=4, n_ff=384, n_layer=4, seed=6)
    )
    (tmp_path / "foreign.gguf").write_bytes(model_bytes.foreign)
    write_tiny_model(tmp_path / "wide-vocab.gguf", TinyModelSpec(seed=7, extra_tokens=200))
    (tmp_path / "broken.gguf").write_bytes(b"GGUF")
    entries = scan_folder(tmp_path)
    target = entries["target.gguf"]

    pairing = find_local_drafts(target, entries.values())

    assert [c.entry.path.name for c in pairing.compatible] == ["draft-small.gguf", "draft-mid.gguf"]
    ratios = [c.size_ratio for c in pairing.compatible]
    assert ratios == sorted(ratios) and ratios[-1] < 1
    reasons = {c.entry.path.name: c.reason for c in pairing.incompatible}
    assert set(reasons) == {"bigger.gguf", "foreign.gguf", "wide-vocab.gguf", "broken.gguf"}
    assert "not smaller" in reasons["bigger.gguf"]
    assert "token 300 differs" in reasons["foreign.gguf"]
    assert "vocab size differs by 200" in reasons["wide-vocab.gguf"]
    assert reasons["broken.gguf"].startswith("unreadable")
    assert target not in [c.entry for c in (*pairing.compatible, *pairing.incompatible)]


def test_pairing_agrees_with_the_engine_rule(tmp_path: Path, model_bytes: ModelBytes) -> None:
    (tmp_path / "target.gguf").write_bytes(model_bytes.target)
    (tmp_path / "draft.gguf").write_bytes(model_bytes.draft)
    (tmp_path / "foreign.gguf").write_bytes(model_bytes.foreign)
    entries = scan_folder(tmp_path)
    target = entries["target.gguf"]
    assert target.metadata is not None

    pairing = find_local_drafts(target, entries.values())

    for candidate in (*pairing.compatible, *pairing.incompatible):
        assert candidate.entry.metadata is not None
        rule = check_vocab_compatibility(target.metadata.vocab, candidate.entry.metadata.vocab)
        assert candidate.vocab == rule
        assert candidate.compatible == rule.compatible
