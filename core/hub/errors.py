"""Errors raised while talking to the Hugging Face Hub or downloading from it.

Each carries a message a user can act on. ``translate_hub_error`` turns the
exceptions of huggingface_hub and its HTTP client into these.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

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
from core.human_units import format_wait

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


class KeyringUnavailableError(HubError):
    """No OS keyring can store the token (none installed, or it refused)."""


class TokenRequiredError(HubError):
    """The Hub answered 401 to a request sent without a token: the repository needs one."""


class NetworkError(HubError):
    """The Hub could not be reached, the connection broke, or the server failed (5xx).

    ``retry_after_seconds`` is the server's ``Retry-After`` (a 503 may carry one).
    """

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RedirectLoopError(HubError):
    """The Hub (or a mirror, proxy or CDN) kept redirecting without serving the file."""


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
    """The destination's disk has less free space than the download needs.

    Raised before a transfer starts and when the disk fills up during one; the
    partial data is kept in both cases. ``more_needed_bytes`` is what the user
    has to free (the rest of the file plus the safety margin, less what is free).
    """

    def __init__(self, message: str, more_needed_bytes: int = 0) -> None:
        super().__init__(message)
        self.more_needed_bytes = more_needed_bytes


class AlreadyDownloadingError(HubError):
    """Another download (in this app or another process) is writing the same file."""


class FileChangedError(HubError):
    """The file changed on the Hub while it was being downloaded, more than once."""


def retry_after_seconds(response: httpx2.Response | None) -> float | None:
    """The ``Retry-After`` header in seconds (it may be a number or an HTTP date)."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def translate_hub_error(
    error: Exception,
    endpoint: str,
    repo_id: str | None = None,
    filename: str | None = None,
    token_sent: bool = True,
) -> HubError:
    """Map an exception from huggingface_hub or httpx2 to a HubError with a clear message.

    Exceptions that are already a HubError are returned unchanged; anything unknown
    becomes a plain HubError that names the original. ``token_sent`` tells a 401
    for a missing token from a 401 for a rejected one.
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
        retry_after = retry_after_seconds(response)
        if status == 429:
            wait = f"; try again in {format_wait(retry_after)}" if retry_after is not None else ""
            return RateLimitedError(
                f"the Hub is rate-limiting requests from this machine{wait}", retry_after
            )
        if status == 401 and not token_sent:
            return TokenRequiredError(
                f"{repo} needs a Hugging Face token (it is private or gated) and none is set "
                f"({TOKEN_HINT})"
            )
        if status == 401:
            return InvalidTokenError(f"the Hub rejected the access token ({TOKEN_HINT})")
        if status == 408:
            return NetworkError("the Hub timed out waiting for the request (408)", retry_after)
        if status is not None and status >= 500:
            busy = " (it is busy or down for maintenance)" if status == 503 else ""
            when = f"in {format_wait(retry_after)}" if retry_after is not None else "later"
            return NetworkError(
                f"the Hub had a server error ({status}){busy}; try again {when}", retry_after
            )
        server_message = error.server_message or str(error).strip().splitlines()[0]
        return HubError(f"the Hub refused the request ({status}): {server_message}")
    if isinstance(error, httpx2.TooManyRedirects):
        # A misconfigured mirror, proxy or CDN; retrying does not help.
        return RedirectLoopError(
            f"the Hub at {endpoint} redirected in a loop instead of serving "
            f"{filename or 'the request'} (a mirror, proxy or CDN is misconfigured)"
        )
    if isinstance(error, httpx2.TimeoutException):
        return NetworkError(f"the Hub at {endpoint} did not answer in time")
    if isinstance(error, httpx2.ConnectError):
        return NetworkError(f"cannot reach the Hub at {endpoint}: check the network connection")
    if isinstance(error, httpx2.TransportError):
        return NetworkError(f"the connection to {endpoint} broke: {error}")
    return HubError(f"unexpected error from the Hub: {type(error).__name__}: {error}")
