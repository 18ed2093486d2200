"""The keys a model pair's saved settings and sweeps are filed under, and reading one back.

A key is ``"<target name>:<size>|<second>"``, where the second part is the draft model's
``"<name>:<size>"`` or, without a draft model, the draft source (``ngram``, ``none``).
File names and sizes, not full paths: moving a models folder keeps the settings, while
a different quantisation (another size) gets its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.engine.config import DraftSource


def model_identity(path: Path) -> str:
    """A model file's name and size: what its saved settings are keyed by."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1  # a missing file still gets a stable key; it simply matches nothing saved
    return f"{path.name}:{size}"


def pair_key(target: Path, draft: Path | None, source: DraftSource | str) -> str:
    """The key a pair's settings are saved under (see the module docstring).

    Without a draft model the draft source takes its place, since n-gram lookup tunes
    differently.
    """
    source = DraftSource(source)
    second = model_identity(draft) if source is DraftSource.MODEL and draft else source.value
    return f"{model_identity(target)}|{second}"


def _file_name(identity: str) -> str:
    """A model's identity ("file.gguf:size") as its file name."""
    return identity.rpartition(":")[0] or identity


@dataclass(frozen=True)
class PairKey:
    """A pair key read back: the target's identity and how the pair drafts."""

    target: str
    # The draft model's identity, or None when the pair drafts without one.
    draft: str | None
    source: DraftSource

    @classmethod
    def parse(cls, key: str) -> PairKey:
        target, _, second = key.partition("|")
        if second in {source.value for source in DraftSource}:
            # A source in the draft's place: n-gram, none, or a model source without a file.
            return cls(target, None, DraftSource(second))
        return cls(target, second or None, DraftSource.MODEL)

    @property
    def target_name(self) -> str:
        return _file_name(self.target)

    def describe_drafting(self) -> str:
        """How the pair drafts: "the draft model d.gguf", "n-gram lookup", "no drafting"."""
        if self.source is DraftSource.NGRAM:
            return "n-gram lookup"
        if self.draft is None:
            return "no drafting"
        return f"the draft model {_file_name(self.draft)}"

    def describe(self) -> str:
        """The pair as the user knows it: "t.gguf + d.gguf", "t.gguf with n-gram lookup"."""
        if self.draft is None:
            return f"{self.target_name} with {self.describe_drafting()}"
        return f"{self.target_name} + {_file_name(self.draft)}"
