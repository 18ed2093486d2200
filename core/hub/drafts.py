"""Finding draft-model candidates on the Hub for a target repository.

Models of one family (``Qwen2.5-7B-Instruct`` and ``Qwen2.5-0.5B-Instruct``)
normally share a tokenizer, so the search looks for smaller siblings by name.
This is a shortlist, not a guarantee: the vocabulary rules are checked on the
GGUF metadata once a candidate is downloaded (see ``core.library.pairing``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.hub.client import HubClient
from core.hub.quant import parameter_count_from_name, size_label_span
from core.hub.search import search_gguf_repos

_GGUF_SUFFIX = re.compile(r"[-_.]?gguf$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_ ]+")
SEARCH_BREADTH = 100


@dataclass(frozen=True)
class ModelFamily:
    """A repository name split around its size label: ``Qwen2.5`` / ``7B`` / ``Instruct``."""

    family: str
    variant: str
    parameter_count: int | None
    search_text: str


@dataclass(frozen=True)
class HubDraftCandidate:
    """A smaller repository of the target's family."""

    repo_id: str
    parameter_count: int | None
    downloads: int
    same_variant: bool


def _normalise(text: str) -> str:
    return _SEPARATORS.sub("-", text.lower()).strip("-")


def model_family(repo_id: str) -> ModelFamily:
    """Split a repository name into family, size and variant."""
    name = _GGUF_SUFFIX.sub("", repo_id.rsplit("/", 1)[-1])
    span = size_label_span(name)
    if span is None:
        return ModelFamily(_normalise(name), "", None, name)
    family_text = name[: span[0]].strip("-_. ")
    return ModelFamily(
        family=_normalise(family_text),
        variant=_normalise(name[span[1] :]),
        parameter_count=parameter_count_from_name(name),
        search_text=family_text,
    )


def find_hub_drafts(client: HubClient, repo_id: str, limit: int = 10) -> list[HubDraftCandidate]:
    """Smaller GGUF repositories of ``repo_id``'s family, likeliest drafts first.

    Same variant (e.g. both "Instruct") first, then smallest (fastest) first,
    then most downloaded.

    Raises:
        HubError: subclass naming network, rate-limit or HTTP problems.
    """
    target = model_family(repo_id)
    if not target.family:
        return []
    hits = search_gguf_repos(client, target.search_text, limit=SEARCH_BREADTH)
    candidates: dict[str, HubDraftCandidate] = {}
    for hit in hits:
        if hit.repo_id == repo_id:
            continue
        other = model_family(hit.repo_id)
        if other.family != target.family:
            continue
        smaller = target.parameter_count is None or (
            other.parameter_count is not None and other.parameter_count < target.parameter_count
        )
        if not smaller:
            continue
        candidates.setdefault(
            hit.repo_id,
            HubDraftCandidate(
                repo_id=hit.repo_id,
                parameter_count=other.parameter_count,
                downloads=hit.downloads,
                same_variant=other.variant == target.variant,
            ),
        )
    ranked = sorted(
        candidates.values(),
        key=lambda c: (not c.same_variant, c.parameter_count or 0, -c.downloads),
    )
    return ranked[:limit]
