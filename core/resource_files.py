"""The one way to read files under ``resources/``: from a checkout, a wheel or a bundle.

importlib.resources resolves the ``resources`` package wherever it was installed or
frozen, so no caller builds paths relative to ``__file__``.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

PACKAGE = "resources"


def resource(*parts: str) -> Traversable:
    """The resource at ``resources/<parts...>`` (it may not exist; check ``is_file()``)."""
    node = resources.files(PACKAGE)
    for part in parts:
        node = node.joinpath(part)
    return node


def read_resource_text(*parts: str) -> str:
    """The UTF-8 text of ``resources/<parts...>``.

    Raises:
        FileNotFoundError: no such resource in this installation.
    """
    return resource(*parts).read_text(encoding="utf-8")


def read_resource_bytes(*parts: str) -> bytes:
    """The bytes of ``resources/<parts...>``."""
    return resource(*parts).read_bytes()
