"""The Hugging Face access token: kept in the OS keyring, never in a plain file.

``HF_TOKEN`` in the environment overrides the stored token, which suits scripts
and CI. Gated models (e.g. Llama) need a token of an account that accepted
their terms.
"""

from __future__ import annotations

import logging
import os
from enum import Enum

import keyring
from keyring.errors import KeyringError, PasswordDeleteError

from core.hub.errors import HubError, KeyringUnavailableError

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "specchat"
KEYRING_USERNAME = "huggingface-token"
TOKEN_ENV = "HF_TOKEN"


class TokenSource(Enum):
    """Where the token in use comes from."""

    ENVIRONMENT = "environment variable HF_TOKEN"
    KEYRING = "OS keyring"
    NONE = "none"


def stored_token() -> str | None:
    """The token saved in the keyring, or None (also when no keyring is usable)."""
    try:
        token = keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except KeyringError as exc:
        # Info, not warning: most downloads need no token, and a machine without a
        # keyring would otherwise hear about it on every Hub command.
        logger.info("cannot read the Hugging Face token from the keyring: %s", exc)
        return None
    return token or None


def resolve_token() -> tuple[str | None, TokenSource]:
    """The token to send to the Hub and where it came from; HF_TOKEN wins."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, TokenSource.ENVIRONMENT
    from_keyring = stored_token()
    if from_keyring:
        return from_keyring, TokenSource.KEYRING
    return None, TokenSource.NONE


def save_token(token: str) -> None:
    """Store the token in the OS keyring.

    Raises:
        HubError: the token is empty.
        KeyringUnavailableError: no keyring backend can store it.
    """
    token = token.strip()
    if not token:
        raise HubError("the token is empty")
    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, token)
    except KeyringError as exc:
        raise KeyringUnavailableError(
            f"cannot store the token in the OS keyring ({exc}); set {TOKEN_ENV} instead"
        ) from exc


def clear_token() -> bool:
    """Remove the stored token; True when there was one."""
    try:
        keyring.delete_password(KEYRING_SERVICE, KEYRING_USERNAME)
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise HubError(f"cannot remove the token from the OS keyring: {exc}") from exc
    return True


def mask_token(token: str) -> str:
    """Show enough of a token to recognise it, never the whole secret."""
    return f"{token[:5]}…{token[-2:]}" if len(token) > 10 else "***"
