"""A repository's GGUF files as the models a user chooses between.

A sharded model (``name-00001-of-00003.gguf`` ...) is one choice whose size is
the sum of its parts. Each choice gets a verdict for this machine, and one is
marked as the default: the largest quantisation that fits, or a Q4_K_M-class
file when sizes or memory are unknown (the usual quality/size sweet spot).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from core.hub.files import FIT_SHARE_OF_MEMORY, HubFile
from core.hub.quant import FULL_PRECISION

_SHARD = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# Preferred when in doubt, best first: 4-bit K-quants keep most quality at a quarter
# of the full size, which is what most users want.
DOUBT_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q4_K", "IQ4_XS", "IQ4_NL", "Q4_1", "Q4_0")


class FitVerdict(Enum):
    """How a file's size compares with this machine's memory budget."""

    FITS = "fits"
    TIGHT = "tight"
    TOO_BIG = "does not fit"
    UNKNOWN = "size unknown"


@dataclass(frozen=True)
class ModelChoice:
    """One downloadable model: a single GGUF file or all shards of a split one."""

    name: str
    quantization: str | None
    files: tuple[HubFile, ...]
    verdict: FitVerdict
    default: bool = False

    @property
    def size(self) -> int | None:
        sizes = [file.size for file in self.files]
        return None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)

    @property
    def sharded(self) -> bool:
        return len(self.files) > 1

    @property
    def filenames(self) -> tuple[str, ...]:
        return tuple(file.filename for file in self.files)

    def is_downloaded_in(self, folder: Path) -> bool:
        """Whether every file of this model is already in ``folder`` (a download's
        destination), so the file list can say so before the user fetches it again."""
        return all((folder / name).is_file() for name in self.filenames)


def fit_verdict(size: int | None, budget_bytes: int | None) -> FitVerdict:
    """Fits within ``FIT_SHARE_OF_MEMORY`` of the budget (room for cache and the
    system), tight up to the whole budget, too big above it."""
    if size is None or not budget_bytes:
        return FitVerdict.UNKNOWN
    if size <= budget_bytes * FIT_SHARE_OF_MEMORY:
        return FitVerdict.FITS
    if size <= budget_bytes:
        return FitVerdict.TIGHT
    return FitVerdict.TOO_BIG


def _split(filename: str) -> tuple[str, int, int] | None:
    match = _SHARD.match(filename)
    if match is None:
        return None
    return match["base"], int(match["index"]), int(match["count"])


def group_model_files(files: Iterable[HubFile], budget_bytes: int | None) -> list[ModelChoice]:
    """Group files into choices (shards together), judge each, mark the default.

    Incomplete shard sets (a part missing on the Hub) are left out: they cannot load.
    Choices come smallest first, unknown sizes last.
    """
    singles: list[tuple[str, tuple[HubFile, ...]]] = []
    shards: dict[str, list[tuple[int, int, HubFile]]] = {}
    for file in files:
        split = _split(file.filename)
        if split is None:
            singles.append((file.filename.removesuffix(".gguf"), (file,)))
        else:
            base, index, count = split
            shards.setdefault(base, []).append((index, count, file))
    for base, parts in shards.items():
        parts.sort(key=lambda part: part[0])
        count = parts[0][1]
        if [index for index, _, _ in parts] == list(range(1, count + 1)):
            singles.append((base, tuple(file for _, _, file in parts)))
    choices = [
        ModelChoice(
            name=name.rsplit("/", 1)[-1],
            quantization=group[0].quantization,
            files=group,
            verdict=FitVerdict.UNKNOWN,
        )
        for name, group in singles
    ]
    choices = [
        ModelChoice(c.name, c.quantization, c.files, fit_verdict(c.size, budget_bytes))
        for c in choices
    ]
    choices.sort(key=lambda c: (c.size is None, c.size or 0, c.name))
    default = default_choice(choices)
    return [
        ModelChoice(c.name, c.quantization, c.files, c.verdict, default=c is default)
        for c in choices
    ]


def default_choice(choices: list[ModelChoice]) -> ModelChoice | None:
    """The largest quantised choice that fits; full precision only when nothing
    quantised fits; a Q4_K_M-class one when nothing is known to fit."""
    fitting = [c for c in choices if c.verdict is FitVerdict.FITS]
    quantized = [c for c in fitting if c.quantization not in FULL_PRECISION]
    pool = quantized or fitting
    if pool:
        return max(pool, key=lambda c: c.size or 0)
    if any(c.verdict is not FitVerdict.UNKNOWN for c in choices):
        # Sizes are known and nothing fits: recommending one would mislead.
        tight = [c for c in choices if c.verdict is FitVerdict.TIGHT]
        return min(tight, key=lambda c: c.size or 0) if tight else None
    for label in DOUBT_PREFERENCE:
        for choice in choices:
            if (choice.quantization or "").upper() == label:
                return choice
    return choices[0] if choices else None
