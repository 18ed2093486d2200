"""Searching the Hub for GGUF repositories, most downloaded first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from huggingface_hub.hf_api import ModelInfo

from core.hub.client import HubClient
from core.hub.quant import parameter_count_from_name

DEFAULT_LIMIT = 20
# The Hub's sort keys for the orders a user can pick; all sort descending.
SORT_KEYS = {"downloads": "downloads", "likes": "likes", "updated": "lastModified"}
_LICENSE_TAG = "license:"


@dataclass(frozen=True)
class RepoSummary:
    """One search hit."""

    repo_id: str
    downloads: int
    likes: int
    gated: bool
    last_modified: datetime | None
    parameter_count: int | None
    license: str | None = None

    @property
    def author(self) -> str:
        return self.repo_id.split("/", 1)[0]

    @classmethod
    def from_model_info(cls, info: ModelInfo) -> RepoSummary:
        licenses = [t[len(_LICENSE_TAG) :] for t in info.tags or [] if t.startswith(_LICENSE_TAG)]
        return cls(
            repo_id=info.id,
            downloads=info.downloads or 0,
            likes=info.likes or 0,
            gated=bool(info.gated),
            last_modified=info.last_modified,
            parameter_count=parameter_count_from_name(info.id),
            license=licenses[0] if licenses else None,
        )


def search_gguf_repos(
    client: HubClient,
    query: str | None = None,
    limit: int = DEFAULT_LIMIT,
    author: str | None = None,
    sort: str = "downloads",
) -> list[RepoSummary]:
    """GGUF repositories matching ``query``, most downloaded first (the Hub's
    ``list_models`` query: ``filter=gguf``, ``sort=downloads``).

    Args:
        sort: ``downloads``, ``likes`` or ``updated`` (most recently changed first).

    Raises:
        HubError: subclass naming network, rate-limit or HTTP problems.
        ValueError: an unknown ``sort``.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}")
    params: dict[str, str | int] = {"filter": "gguf", "sort": SORT_KEYS[sort], "limit": limit}
    if query:
        params["search"] = query
    if author:
        params["author"] = author
    items = client.get_json_pages("/api/models", params, max_items=limit)
    return [RepoSummary.from_model_info(ModelInfo(**_with_siblings(item))) for item in items]


def _with_siblings(item: dict[str, object]) -> dict[str, object]:
    # ModelInfo expects the key; list results omit it (huggingface_hub does the same).
    return {"siblings": None, **item}
