"""Text search over titles and messages, and the previews shown in the list.

SQLite's LIKE and lower() fold only ASCII case, and FTS5 is missing from some
Python builds, so matching is a small Python function registered on the
connection: Unicode case folding, and no wildcard characters to escape.
Conversations are small enough (thousands of messages) for a scan.
"""

from __future__ import annotations

import sqlite3

PREVIEW_CHARS = 100
# Text kept before a match in a search preview, so the match has some context.
MATCH_LEAD_CHARS = 30


def contains(haystack: str | None, needle: str | None) -> bool:
    if haystack is None or not needle:
        return False
    return needle.casefold() in haystack.casefold()


def register_search_function(connection: sqlite3.Connection) -> None:
    connection.create_function("specchat_contains", 2, contains, deterministic=True)


def preview(text: str, match: str = "") -> str:
    """One line of ``text``: its start, or the part around the first ``match``."""
    line = " ".join(text.split())
    start = line.casefold().find(match.casefold()) if match else -1
    # casefold can change lengths (ß -> ss); only trust the index when it cannot have.
    if start > MATCH_LEAD_CHARS and len(line.casefold()) == len(line):
        cut = start - MATCH_LEAD_CHARS
        space = line.find(" ", cut, start)  # start the preview on a word
        if space != -1:
            cut = space + 1
        line = "…" + line[cut:]
    if len(line) > PREVIEW_CHARS:
        line = line[: PREVIEW_CHARS - 1].rstrip() + "…"
    return line
