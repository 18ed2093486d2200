"""Hugging Face Hub: search, file listings, draft candidates and resumable downloads."""

from core.hub.client import HubClient, resolve_endpoint
from core.hub.download import DownloadProgress, DownloadRequest, DownloadState, TransferSettings
from core.hub.drafts import HubDraftCandidate, find_hub_drafts
from core.hub.files import HubFile, RepoFiles, list_gguf_files
from core.hub.manager import DownloadManager, DownloadSnapshot, DownloadTask
from core.hub.search import RepoSummary, search_gguf_repos

__all__ = [
    "DownloadManager",
    "DownloadProgress",
    "DownloadRequest",
    "DownloadSnapshot",
    "DownloadState",
    "DownloadTask",
    "HubClient",
    "HubDraftCandidate",
    "HubFile",
    "RepoFiles",
    "RepoSummary",
    "TransferSettings",
    "find_hub_drafts",
    "list_gguf_files",
    "resolve_endpoint",
    "search_gguf_repos",
]
