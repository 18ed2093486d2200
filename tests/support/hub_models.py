"""Bytes of tiny GGUF models for the library and hub tests: a target, a smaller draft
with the same vocabulary, and a model with a foreign vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.tiny_gguf import TinyModelSpec, write_tiny_model

TARGET_SPEC = TinyModelSpec(n_embd=128, n_head=4, n_head_kv=2, n_ff=256, n_layer=4, seed=1)
DRAFT_SPEC = TinyModelSpec(seed=2)
FOREIGN_SPEC = TinyModelSpec(seed=3, vocab_shift_from=300)


@dataclass(frozen=True)
class ModelBytes:
    """Contents of the three test models (the target is about 2.7 MB)."""

    target: bytes
    draft: bytes
    foreign: bytes


def build_model_bytes(folder: Path) -> ModelBytes:
    specs = {"target": TARGET_SPEC, "draft": DRAFT_SPEC, "foreign": FOREIGN_SPEC}
    contents = {
        name: write_tiny_model(folder / f"{name}.gguf", spec).read_bytes()
        for name, spec in specs.items()
    }
    return ModelBytes(**contents)
