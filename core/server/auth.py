"""API keys and the bind check: the server is private unless a key guards it."""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from core.errors import ConfigError

API_KEY_ENV = "SPECCHAT_API_KEY"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def generate_api_key() -> str:
    """A fresh random key, in the ``sk-`` shape clients expect."""
    return "sk-specchat-" + secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key.

    Raises:
        ConfigError: ``host`` is not a loopback address and no key is set.
    """
    if api_key and api_key != api_key.strip():  # "" is no key; "   " is a mistake
        raise ConfigError(
            "the API key is blank or starts or ends with spaces; clients cannot send such "
            "a key. Choose one without spaces around it (e.g. a random string)"
        )
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach "
            f"this machine could use the models. Pass --api-key KEY (or set {API_KEY_ENV}), "
            "or listen on 127.0.0.1"
        )


def key_matches(authorization: str | None, api_key: str | None) -> bool:
    """Whether an ``Authorization: Bearer KEY`` header carries the key (any, if none set)."""
    if not api_key:
        return True
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, so the key cannot be guessed from response times.
    return hmac.compare_digest(token.strip().encode(), api_key.encode())
