"""Core messages as the window shows them.

The core writes its errors to follow "error: " on a terminal, so they start in lower
case ("cannot reach the Hub at ..."); standing alone in a status line or a panel they
start with a capital.
"""

from __future__ import annotations


def as_sentence(text: str) -> str:
    """``text`` with a capital first letter when it starts with a plain word; a file
    name ("tiny-vocab.gguf is ...") or a code ("n_ctx ...") keeps its own spelling."""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        return text[:1].upper() + text[1:]
    return text
