"""Which local models can draft for a target, by the engine's own vocabulary rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.library.scan import ModelEntry
from core.vocab import VocabCompatibility, check_vocab_compatibility


@dataclass(frozen=True)
class DraftCandidate:
    """One model judged as a draft for the target.

    ``size_ratio`` is draft size / target size: decoding is memory-bound, so a
    smaller file drafts faster.
    """

    entry: ModelEntry
    compatible: bool
    reason: str
    size_ratio: float
    vocab: VocabCompatibility | None = None


@dataclass(frozen=True)
class DraftPairing:
    """Drafts for one target: usable ones smallest first, the rest with reasons."""

    target: ModelEntry
    compatible: tuple[DraftCandidate, ...]
    incompatible: tuple[DraftCandidate, ...]


def _judge(target: ModelEntry, candidate: ModelEntry) -> DraftCandidate:
    ratio = candidate.file_size / target.file_size if target.file_size else 0.0
    if candidate.metadata is None or target.metadata is None:
        reason = f"unreadable: {candidate.error}"
        return DraftCandidate(candidate, False, reason, ratio)
    vocab = check_vocab_compatibility(target.metadata.vocab, candidate.metadata.vocab)
    if not vocab.compatible:
        return DraftCandidate(candidate, False, vocab.explain(), ratio, vocab)
    if candidate.file_size >= target.file_size:
        reason = "same vocabulary, but not smaller than the target: it would not speed it up"
        return DraftCandidate(candidate, False, reason, ratio, vocab)
    reason = f"same vocabulary, {ratio:.0%} of the target's size"
    return DraftCandidate(candidate, True, reason, ratio, vocab)


def find_local_drafts(target: ModelEntry, entries: Iterable[ModelEntry]) -> DraftPairing:
    """Sort ``entries`` into usable drafts for ``target`` (smallest first) and the rest.

    Uses ``core.vocab.check_vocab_compatibility``, the check the engine applies
    before loading a pair, so the library never offers a pair the engine refuses.
    """
    target_path = target.path.resolve()
    judged = [_judge(target, entry) for entry in entries if entry.path.resolve() != target_path]
    compatible = sorted((c for c in judged if c.compatible), key=lambda c: c.size_ratio)
    incompatible = [c for c in judged if not c.compatible]
    return DraftPairing(target, tuple(compatible), tuple(incompatible))
