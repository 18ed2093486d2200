"""Errors raised while talking to the Hugging Face Hub or downloading from it.

Each carries a message a user can act on. ``translate_hub_error`` turns the
exceptions of huggingface_hub and its HTTP client into these.
"""

from __future__ import annotations

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from core.errors import SpecChatError

TOKEN_HINT = "set HF_TOKEN or run `specchat-cli token set`"


class HubError(SpecChatError):
    """Any failure while searching, listing or downloading from the Hub."""


class GatedRepoAccessError(HubError):
    """The repository is gated: it needs a token of an account that accepted its terms."""


class RepoNotFoundError(HubError):
    """No such repository or revision (or it is private and the token cannot see it)."""


class HubFileNotFoundError(HubError):
    """The repository exists but has no file of that name."""


class InvalidTokenError(HubError):
    """The Hub rejected the access token."""


class NetworkError(HubError):
    """The Hub could not be reached, or the connection broke."""


class RateLimitedError(HubError):
    """The Hub refused the request because too many were made."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class DownloadCancelled(HubError):
    """The user cancelled a download; its partial data is kept for a resume."""


class ChecksumMismatchError(HubError):
    """The downloaded bytes do not match the Hub's SHA-256; the data was discarded."""


class InsufficientDiskSpaceError(HubError):
    """The destination's disk has less free space than the download needs."""


def _retry_after(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate_hub_error(
    error: Exception, endpoint: str, repo_id: str | None = None, filename: str | None = None
) -> HubError:
    """Map an exception from huggingface_hub or httpx2 to a HubError with a clear message.

    Exceptions that are already a HubError are returned unchanged; anything unknown
    becomes a plain HubError that names the original.
    """
    if isinstance(error, HubError):
        return error
    repo = repo_id or "the repository"
    # GatedRepoError subclasses RepositoryNotFoundError, so it must be tested first.
    if isinstance(error, GatedRepoError):
        return GatedRepoAccessError(
            f"{repo} is gated: accept its terms at {endpoint}/{repo_id or ''} with your "
            f"Hugging Face account, then use a token of that account ({TOKEN_HINT})"
        )
    if isinstance(error, RevisionNotFoundError):
        return RepoNotFoundError(f"{repo} has no such revision (branch, tag or commit)")
    if isinstance(error, RepositoryNotFoundError):
        return RepoNotFoundError(
            f"repository {repo} not found on {endpoint} (if it is private, {TOKEN_HINT})"
        )
    if isinstance(error, RemoteEntryNotFoundError):
        return HubFileNotFoundError(f"{repo} has no file {filename or ''!s}".rstrip())
    if isinstance(error, HFValidationError):
        return RepoNotFoundError(f"{repo!r} is not a valid repository id (expected owner/name)")
    if isinstance(error, OfflineModeIsEnabled):
        return NetworkError("offline mode is on (HF_HUB_OFFLINE is set): the Hub is not contacted")
    if isinstance(error, HfHubHTTPError):
        response = error.response
        status = response.status_code if response is not None else None
        if status == 429:
            retry_after = _retry_after(response)
            wait = f"; try again in {retry_after:.0f} s" if retry_after is not None else ""
            return RateLimitedError(
                f"the Hub is rate-limiting requests from this machine{wait}", retry_after
            )
        if status == 401:
            return InvalidTokenError(f"the Hub rejected the access token ({TOKEN_HINT})")
        if status is not None and status >= 500:
            return NetworkError(f"the Hub had a server error ({status}); try again later")
        server_message = error.server_message or str(error).strip().splitlines()[0]
        return HubError(f"the Hub refused the request ({status}): {server_message}")
    if isinstance(error, httpx2.TimeoutException):
        return NetworkError(f"the Hub at {endpoint} did not answer in time")
    if isinstance(error, httpx2.ConnectError):
        return NetworkError(f"cannot reach the Hub at {endpoint}: check the network connection")
    if isinstance(error, httpx2.TransportError):
        return NetworkError(f"the connection to {endpoint} broke: {error}")
    return HubError(f"unexpected error from the Hub: {type(error).__name__}: {error}")
