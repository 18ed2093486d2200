"""One connection's worth of Hub settings: endpoint, token and HTTP helpers.

``HF_ENDPOINT`` is read when a client is made, not when huggingface_hub is
imported (it reads it only once, at import), so tests and users can point the app
at a mirror at any time. Requests here are made once, without huggingface_hub's
retry loop: it sleeps up to about 20 s on a refused connection or a 429, which
would leave a user staring at a frozen search instead of a clear message.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

import core
from core.hub.auth import resolve_token
from core.hub.errors import InvalidTokenError, translate_hub_error

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
LIBRARY_NAME = "specchat"
REQUEST_TIMEOUT_S = 20.0


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (httpx2's defaults) for every download's HTTP client.

    Building one loads the CA certificates, about 0.1 s with Python's global lock
    held: per download, that stalled the window's event loop (measured with
    tests/benchmarks/models_download_bench.py). An SSLContext may be shared
    between threads and connections.
    """
    return httpx2.create_ssl_context()


def resolve_endpoint(explicit: str | None = None) -> str:
    """The Hub's base URL: the explicit one, else ``HF_ENDPOINT``, else huggingface.co."""
    endpoint = explicit or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    return endpoint.rstrip("/")


@dataclass(frozen=True)
class HubClient:
    """Endpoint and token for every Hub call; cheap to make, safe to share across threads."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None
    timeout_s: float = REQUEST_TIMEOUT_S

    @classmethod
    def from_environment(cls, endpoint: str | None = None, token: str | None = None) -> HubClient:
        """A client for ``endpoint`` (default: HF_ENDPOINT) with ``token`` (default: HF_TOKEN,
        then the keyring)."""
        return cls(endpoint=resolve_endpoint(endpoint), token=token or resolve_token()[0])

    def headers(self) -> dict[str, str]:
        # token=False keeps huggingface_hub from reading a token file behind our back.
        return build_hf_headers(
            token=self.token or False, library_name=LIBRARY_NAME, library_version=core.__version__
        )

    def api(self) -> HfApi:
        return HfApi(
            endpoint=self.endpoint,
            token=self.token or False,
            library_name=LIBRARY_NAME,
            library_version=core.__version__,
        )

    def file_url(self, repo_id: str, filename: str, revision: str | None = None) -> str:
        return hf_hub_url(repo_id, filename, revision=revision, endpoint=self.endpoint)

    def get_json_pages(
        self, path: str, params: dict[str, Any], max_items: int
    ) -> list[dict[str, Any]]:
        """GET a paginated API list (``Link: <...>; rel="next"``) until ``max_items``.

        Raises:
            HubError: with a message for network, rate-limit and HTTP errors.
        """
        url: str | None = f"{self.endpoint}{path}"
        query: dict[str, Any] | None = params
        items: list[dict[str, Any]] = []
        try:
            while url is not None and len(items) < max_items:
                response = get_session().get(
                    url, params=query, headers=self.headers(), timeout=self.timeout_s
                )
                hf_raise_for_status(response)
                items.extend(response.json())
                url = response.links.get("next", {}).get("url")
                query = None  # the next link carries the query already
        except (httpx2.HTTPError, OSError, HFValidationError) as exc:
            raise translate_hub_error(
                exc, self.endpoint, token_sent=self.token is not None
            ) from exc
        return items[:max_items]

    def model_info(self, repo_id: str, revision: str | None = None) -> ModelInfo:
        """Repository info with every file's size and LFS SHA-256.

        Raises:
            HubError: subclass naming gated, missing, network or rate-limit problems.
        """
        try:
            return self.api().model_info(
                repo_id, revision=revision, files_metadata=True, timeout=self.timeout_s
            )
        except (httpx2.HTTPError, OSError, HFValidationError) as exc:
            raise translate_hub_error(
                exc, self.endpoint, repo_id, token_sent=self.token is not None
            ) from exc

    def whoami(self) -> str:
        """The account name the token belongs to.

        Raises:
            InvalidTokenError: the Hub rejected the token (or none is set).
            HubError: network and server problems, with a message.
        """
        try:
            response = get_session().get(
                f"{self.endpoint}/api/whoami-v2", headers=self.headers(), timeout=self.timeout_s
            )
            hf_raise_for_status(response)
            name = response.json().get("name")
        except (httpx2.HTTPError, OSError, HFValidationError, ValueError) as exc:
            error = translate_hub_error(exc, self.endpoint, token_sent=True)
            status = exc.response.status_code if isinstance(exc, HfHubHTTPError) else None
            if status in (401, 403):
                error = InvalidTokenError(
                    "the Hub does not accept this token: copy it again from your "
                    "Hugging Face account settings (Access Tokens)"
                )
            raise error from exc
        return str(name or "unknown account")
