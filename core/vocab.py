"""Vocabulary identity and the draft/target compatibility rules.

The rules are llama.cpp's (``common_speculative_are_compatible``): same tokenizer
type, same BOS/EOS handling, vocabulary sizes within 128 of each other, and
identical token text from id 5 upward. A draft that fails them would propose ids
that mean something else to the target, so such a pair is refused up front.
The check works on GGUF metadata, so the model library can pair models without
loading them, and the engine applies the very same function before generating.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MAX_VOCAB_SIZE_DIFFERENCE = 128
FIRST_COMPARED_TOKEN_ID = 5

# tokenizer.ggml.model -> llama.cpp vocab type name
_VOCAB_TYPES = {
    "llama": "SPM",
    "gpt2": "BPE",
    "bert": "WPM",
    "t5": "UGM",
    "rwkv": "RWKV",
    "plamo2": "PLAMO2",
    "no_vocab": "NONE",
    "none": "NONE",
}


@dataclass(frozen=True)
class VocabInfo:
    """The parts of a tokenizer that decide whether two models can share token ids."""

    tokenizer_model: str
    tokens: tuple[str, ...]
    bos_id: int | None
    eos_id: int | None
    add_bos: bool | None
    add_eos: bool | None
    pre_tokenizer: str | None = None

    @property
    def vocab_type(self) -> str:
        return _VOCAB_TYPES.get(self.tokenizer_model, self.tokenizer_model.upper())

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def fingerprint(self) -> str:
        """Short stable hash of everything the compatibility rules look at."""
        digest = hashlib.sha256()
        digest.update(
            f"{self.vocab_type}|{self.bos_id}|{self.eos_id}|{self.add_bos}|{self.add_eos}".encode()
        )
        for text in self.tokens:
            digest.update(text.encode("utf-8", errors="replace"))
            digest.update(b"\0")
        return digest.hexdigest()[:16]

    @classmethod
    def from_gguf_values(cls, values: dict[str, Any]) -> VocabInfo:
        tokens = values.get("tokenizer.ggml.tokens") or []

        def optional_int(key: str) -> int | None:
            value = values.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        def optional_bool(key: str) -> bool | None:
            value = values.get(key)
            return value if isinstance(value, bool) else None

        return cls(
            tokenizer_model=str(values.get("tokenizer.ggml.model", "none")),
            tokens=tuple(str(token) for token in tokens),
            bos_id=optional_int("tokenizer.ggml.bos_token_id"),
            eos_id=optional_int("tokenizer.ggml.eos_token_id"),
            add_bos=optional_bool("tokenizer.ggml.add_bos_token"),
            add_eos=optional_bool("tokenizer.ggml.add_eos_token"),
            pre_tokenizer=values.get("tokenizer.ggml.pre"),
        )


@dataclass(frozen=True)
class VocabCompatibility:
    """Outcome of the check, with one human-readable line per failed rule."""

    compatible: bool
    reasons: tuple[str, ...]
    first_differing_token_id: int | None = None

    def explain(self) -> str:
        if self.compatible:
            return "vocabularies are compatible"
        return "; ".join(self.reasons)


def check_vocab_compatibility(target: VocabInfo, draft: VocabInfo) -> VocabCompatibility:
    """Apply llama.cpp's speculative-decoding vocabulary rules to a target/draft pair."""
    reasons: list[str] = []
    if target.n_tokens == 0 or draft.n_tokens == 0:
        missing = "target" if target.n_tokens == 0 else "draft"
        return VocabCompatibility(False, (f"the {missing} model has no vocabulary",))
    if target.vocab_type != draft.vocab_type:
        reasons.append(f"vocab type differs: target {target.vocab_type}, draft {draft.vocab_type}")
    if target.bos_id != draft.bos_id or target.add_bos != draft.add_bos:
        reasons.append(
            f"BOS differs: target id {target.bos_id} (add {target.add_bos}), "
            f"draft id {draft.bos_id} (add {draft.add_bos})"
        )
    if target.eos_id != draft.eos_id or target.add_eos != draft.add_eos:
        reasons.append(
            f"EOS differs: target id {target.eos_id} (add {target.add_eos}), "
            f"draft id {draft.eos_id} (add {draft.add_eos})"
        )
    size_difference = abs(target.n_tokens - draft.n_tokens)
    if size_difference > MAX_VOCAB_SIZE_DIFFERENCE:
        reasons.append(
            f"vocab size differs by {size_difference} (target {target.n_tokens}, "
            f"draft {draft.n_tokens}; at most {MAX_VOCAB_SIZE_DIFFERENCE} allowed)"
        )
    first_difference = None
    for token_id in range(FIRST_COMPARED_TOKEN_ID, min(target.n_tokens, draft.n_tokens)):
        if target.tokens[token_id] != draft.tokens[token_id]:
            first_difference = token_id
            reasons.append(
                f"token {token_id} differs: target {target.tokens[token_id]!r}, "
                f"draft {draft.tokens[token_id]!r}"
            )
            break
    return VocabCompatibility(not reasons, tuple(reasons), first_difference)
