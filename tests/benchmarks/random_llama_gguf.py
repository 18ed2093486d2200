"""Writes a Llama-shaped GGUF with random Q4_0 weights, for timing only.

A real 8B model is 4-16 GB to download; what a decode costs depends only on the
shapes and the weight type, so random weights written on the spot time the same.
The answers are noise. Q4_0 blocks (an fp16 scale and 32 four-bit values) are
drawn from one random pool and tiled, so writing 4.5 GB takes seconds, not the
minutes that quantising random floats would.

    python tests/benchmarks/random_llama_gguf.py OUT.gguf [--shape 8b|1b|tiny]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.constants import LlamaFileType, TokenType

Q4_0_BLOCK_VALUES = 32
Q4_0_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles


@dataclass(frozen=True)
class LlamaShape:
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    rope_base: float = 500000.0


SHAPES = {
    # Llama-3.1-8B and Llama-3.2-1B, the shapes speculative decoding is usually paired on.
    "8b": LlamaShape(4096, 32, 32, 8, 14336, 128256),
    "1b": LlamaShape(2048, 16, 32, 8, 8192, 128256),
    # Small enough for a quick check that the writer works.
    "tiny": LlamaShape(256, 2, 4, 2, 512, 1024),
}


def _vocabulary(n_vocab: int) -> tuple[list[str], list[int]]:
    """SentencePiece-style: control tokens, the 256 byte tokens, then fillers."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    filler = n_vocab - len(tokens)
    tokens += [f"▁w{index}" for index in range(filler)]
    types += [TokenType.NORMAL] * filler
    return tokens, [int(t) for t in types]


class _BlockPool:
    """Random Q4_0 blocks with small finite scales, tiled to any tensor size."""

    def __init__(self, seed: int, n_blocks: int = 1 << 20) -> None:
        rng = np.random.default_rng(seed)
        pool = np.empty((n_blocks, Q4_0_BLOCK_BYTES), dtype=np.uint8)
        scales = rng.uniform(0.002, 0.02, n_blocks).astype(np.float16)
        pool[:, :2] = scales.view(np.uint8).reshape(n_blocks, 2)
        pool[:, 2:] = rng.integers(0, 256, (n_blocks, 16), dtype=np.uint8)
        self.flat = pool.reshape(-1)

    def tensor(self, rows: int, cols: int) -> np.ndarray:
        n_bytes = rows * cols // Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES
        repeats = -(-n_bytes // self.flat.size)
        data = np.tile(self.flat, repeats)[:n_bytes] if repeats > 1 else self.flat[:n_bytes]
        return data.reshape(rows, cols // Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES)


def write_random_llama(path: Path, shape: LlamaShape, seed: int = 0) -> Path:
    """Write ``shape`` as a loadable llama GGUF with random Q4_0 weights to ``path``."""
    head_dim = shape.n_embd // shape.n_head
    kv_dim = head_dim * shape.n_head_kv
    matrices: list[tuple[str, int, int]] = [
        ("token_embd.weight", shape.n_vocab, shape.n_embd),
        ("output.weight", shape.n_vocab, shape.n_embd),
    ]
    norms = ["output_norm.weight"]
    for layer in range(shape.n_layer):
        prefix = f"blk.{layer}"
        norms += [f"{prefix}.attn_norm.weight", f"{prefix}.ffn_norm.weight"]
        matrices += [
            (f"{prefix}.attn_q.weight", shape.n_embd, shape.n_embd),
            (f"{prefix}.attn_k.weight", kv_dim, shape.n_embd),
            (f"{prefix}.attn_v.weight", kv_dim, shape.n_embd),
            (f"{prefix}.attn_output.weight", shape.n_embd, shape.n_embd),
            (f"{prefix}.ffn_gate.weight", shape.n_ff, shape.n_embd),
            (f"{prefix}.ffn_up.weight", shape.n_ff, shape.n_embd),
            (f"{prefix}.ffn_down.weight", shape.n_embd, shape.n_ff),
        ]
    tokens, types = _vocabulary(shape.n_vocab)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("random-llama")
    writer.add_file_type(LlamaFileType.MOSTLY_Q4_0)
    writer.add_context_length(8192)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(shape.rope_base)
    writer.add_vocab_size(shape.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for name in norms:
        writer.add_tensor_info(name, (shape.n_embd,), np.dtype(np.float32), shape.n_embd * 4)
    for name, rows, cols in matrices:
        byte_shape = (rows, cols // Q4_0_BLOCK_VALUES * Q4_0_BLOCK_BYTES)
        writer.add_tensor_info(
            name,
            byte_shape,
            np.dtype(np.uint8),
            byte_shape[0] * byte_shape[1],
            raw_dtype=GGMLQuantizationType.Q4_0,
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    pool = _BlockPool(seed)
    ones = np.ones(shape.n_embd, dtype=np.float32)
    for _ in norms:
        writer.write_tensor_data(ones)
    for _, rows, cols in matrices:
        writer.write_tensor_data(pool.tensor(rows, cols))
    writer.close()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    args = parser.parse_args()
    started = time.perf_counter()
    write_random_llama(args.path, SHAPES[args.shape])
    size_gb = args.path.stat().st_size / 1e9
    seconds = time.perf_counter() - started
    print(f"wrote {args.path} ({args.shape}, {size_gb:.2f} GB) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
