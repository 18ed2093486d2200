"""Joining messages from different places into sentences a user reads as one text."""

from __future__ import annotations


def with_full_stop(text: str) -> str:
    """``text`` ending its sentence, so another can follow: reasons from llama.cpp, the
    engine process or an RPC worker come with or without a full stop."""
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?", "…")) else text + "."
