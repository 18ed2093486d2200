"""Writes tiny but real llama-architecture GGUF models for fast tests.

The weights are random (seeded), the tokenizer is a SentencePiece-style vocabulary
with byte fallback, so llama.cpp loads, tokenizes and decodes them like any model.
A draft is made by perturbing the target's weights: it agrees with the target
often but not always, which exercises both acceptance and rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter
from gguf.constants import LlamaFileType, TokenType

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_WORDS = (
    "the",
    "a",
    "an",
    "and",
    "of",
    "to",
    "in",
    "is",
    "it",
    "that",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "be",
    "at",
    "by",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "not",
    "but",
    "what",
    "all",
    "were",
    "when",
    "we",
    "there",
    "can",
    "your",
    "which",
    "their",
    "said",
    "if",
    "do",
    "will",
    "each",
    "about",
    "how",
    "up",
    "out",
    "them",
    "then",
    "she",
    "many",
    "some",
    "so",
    "these",
    "would",
    "other",
    "into",
    "has",
    "more",
    "her",
    "two",
    "like",
    "him",
    "see",
    "time",
    "could",
    "no",
    "make",
    "than",
    "first",
    "been",
    "its",
    "who",
    "now",
    "people",
    "my",
    "made",
)


@dataclass(frozen=True)
class TinyModelSpec:
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 128
    n_layer: int = 2
    context_length: int = 512
    seed: int = 0
    # Token texts differ from the standard vocabulary from this id on (None: never).
    vocab_shift_from: int | None = None
    extra_tokens: int = 0
    eos_id: int = 2
    chat_template: str | None = CHAT_TEMPLATE


def _vocabulary(spec: TinyModelSpec) -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    for role in ("system", "user", "assistant"):
        tokens.append(f"<|{role}|>")
        types.append(TokenType.CONTROL)
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(TokenType.BYTE)
    pieces = [f"▁{word}" for word in _WORDS] + list("abcdefghijklmnopqrstuvwxyz.,!?")
    pieces += [f"x{index}" for index in range(spec.extra_tokens)]
    for piece in pieces:
        tokens.append(piece)
        types.append(TokenType.NORMAL)
    if spec.vocab_shift_from is not None:
        for index in range(spec.vocab_shift_from, len(tokens)):
            if types[index] == TokenType.NORMAL:
                tokens[index] = tokens[index] + "_v2"
    scores = [0.0] * len(tokens)
    for index, token_type in enumerate(types):
        if token_type == TokenType.NORMAL:
            scores[index] = -float(index) / 100.0
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(
    path: Path,
    spec: TinyModelSpec | None = None,
    perturb_from: int | None = None,
    perturb_scale: float = 0.0,
) -> Path:
    """Write a tiny llama model to ``path``.

    Args:
        spec: sizes, vocabulary variant and seed.
        perturb_from: when set, weights are drawn with this seed and then perturbed
            with noise of ``perturb_scale`` drawn from ``spec.seed``: a draft that
            mostly agrees with the model written from seed ``perturb_from``.
    """
    spec = spec or TinyModelSpec()
    tokens, scores, types = _vocabulary(spec)
    n_vocab = len(tokens)
    base_rng = np.random.default_rng(spec.seed if perturb_from is None else perturb_from)
    noise_rng = np.random.default_rng(spec.seed + 1000)
    head_dim = spec.n_embd // spec.n_head

    def weight(*shape: int, scale: float) -> np.ndarray:
        values = base_rng.standard_normal(shape) * scale
        if perturb_from is not None and perturb_scale > 0:
            values += noise_rng.standard_normal(shape).astype(np.float32) * scale * perturb_scale
        return values.astype(np.float32)

    writer = GGUFWriter(str(path), "llama")
    writer.add_name(f"tiny-llama-{spec.seed}")
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(spec.eos_id)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if spec.chat_template:
        writer.add_chat_template(spec.chat_template)

    embd_scale = 1.0
    proj_scale = 1.0 / np.sqrt(spec.n_embd)
    writer.add_tensor("token_embd.weight", weight(n_vocab, spec.n_embd, scale=embd_scale))
    writer.add_tensor("output_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, spec.n_embd, scale=3.0 * proj_scale))
    kv_dim = head_dim * spec.n_head_kv
    for layer in range(spec.n_layer):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
        writer.add_tensor(
            f"{prefix}.attn_q.weight", weight(spec.n_embd, spec.n_embd, scale=proj_scale)
        )
        writer.add_tensor(f"{prefix}.attn_k.weight", weight(kv_dim, spec.n_embd, scale=proj_scale))
        writer.add_tensor(f"{prefix}.attn_v.weight", weight(kv_dim, spec.n_embd, scale=proj_scale))
        writer.add_tensor(
            f"{prefix}.attn_output.weight", weight(spec.n_embd, spec.n_embd, scale=proj_scale)
        )
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
        writer.add_tensor(
            f"{prefix}.ffn_gate.weight", weight(spec.n_ff, spec.n_embd, scale=proj_scale)
        )
        writer.add_tensor(
            f"{prefix}.ffn_up.weight", weight(spec.n_ff, spec.n_embd, scale=proj_scale)
        )
        writer.add_tensor(
            f"{prefix}.ffn_down.weight",
            weight(spec.n_embd, spec.n_ff, scale=1.0 / np.sqrt(spec.n_ff)),
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
