"""Searching the Hub for GGUF repositories, most downloaded first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from huggingface_hub.hf_api import ModelInfo

from core.hub.client import HubClient
from core.hub.quant import parameter_count_from_name

DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class RepoSummary:
    """One search hit."""

    repo_id: str
    downloads: int
    likes: int
    gated: bool
    last_modified: datetime | None
    parameter_count: int | None

    @classmethod
    def from_model_info(cls, info: ModelInfo) -> RepoSummary:
        return cls(
            repo_id=info.id,
            downloads=info.downloads or 0,
            likes=info.likes or 0,
            gated=bool(info.gated),
            last_modified=info.last_modified,
            parameter_count=parameter_count_from_name(info.id),
        )


def search_gguf_repos(
    client: HubClient,
    query: str | None = None,
    limit: int = DEFAULT_LIMIT,
    author: str | None = None,
) -> list[RepoSummary]:
    """GGUF repositories matching ``query``, sorted by downloads (the Hub's
    ``list_models`` query: ``filter=gguf``, ``sort=downloads``).

    Raises:
        HubError: subclass naming network, rate-limit or HTTP problems.
    """
    params: dict[str, str | int] = {"filter": "gguf", "sort": "downloads", "limit": limit}
    if query:
        params["search"] = query
    if author:
        params["author"] = author
    items = client.get_json_pages("/api/models", params, max_items=limit)
    return [RepoSummary.from_model_info(ModelInfo(**_with_siblings(item))) for item in items]


def _with_siblings(item: dict[str, object]) -> dict[str, object]:
    # ModelInfo expects the key; list results omit it (huggingface_hub does the same).
    return {"siblings": None, **item}
