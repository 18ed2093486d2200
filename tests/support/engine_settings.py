"""Generation settings the engine tests share."""

from __future__ import annotations

from typing import Any

from core.engine import DraftSettings, GenerationSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0)


def greedy_settings(n: int = 60, **drafting: Any) -> GenerationSettings:
    """Greedy answers of ``n`` tokens with these draft settings.

    The draft length is fixed unless a test asks for ``adaptive=True``: the adaptive
    one reacts to measured step times, so which steps draft would depend on the
    machine's load, and these tests compare streams and drafting steps exactly.
    """
    drafting.setdefault("adaptive", False)
    return GenerationSettings(n_predict=n, sampling=GREEDY, drafting=DraftSettings(**drafting))
