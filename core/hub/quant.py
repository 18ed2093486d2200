"""Quantization labels and model sizes as they appear in Hub file and repo names."""

from __future__ import annotations

import re

_QUANT_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])("
    r"I?Q[1-8](?:_K)?(?:_(?:0|1|XXS|XS|S|M|L|XL|NL))?"
    r"|TQ[12]_0|MXFP4(?:_MOE)?|BF16|FP16|FP32|F16|F32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# "7B", "0.5B", "135M", "8x7B"; the lookarounds keep "Q4" or "v2" from matching.
_SIZE_PATTERN = re.compile(
    r"(?<![A-Za-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([BM])(?![A-Za-z0-9])", re.I
)
# Full-precision files: they fit on big machines but are rarely what a user wants.
FULL_PRECISION = frozenset({"F32", "FP32", "F16", "FP16", "BF16"})
_SHARD_PATTERN = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def quantization_from_filename(filename: str) -> str | None:
    """The quantization label in a GGUF file name, e.g. ``Q4_K_M``, or None."""
    matches = _QUANT_PATTERN.findall(filename.rsplit("/", 1)[-1])
    return matches[-1].upper() if matches else None


def parameter_count_from_name(name: str) -> int | None:
    """Parameters implied by a model name such as ``Qwen2.5-0.5B`` or ``Mixtral-8x7B``."""
    match = _SIZE_PATTERN.search(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    experts = int(match.group(1) or 1)
    scale = 1_000_000_000 if match.group(3).upper() == "B" else 1_000_000
    return int(experts * float(match.group(2)) * scale)


def size_label_span(name: str) -> tuple[int, int] | None:
    """Where the size label (``7B``) sits in ``name``, to split family from variant."""
    match = _SIZE_PATTERN.search(name)
    return match.span() if match else None


def is_later_shard(filename: str) -> bool:
    """True for shards 2..n of a split GGUF; only the first one is opened."""
    match = _SHARD_PATTERN.search(filename)
    return match is not None and int(match.group(1)) > 1
