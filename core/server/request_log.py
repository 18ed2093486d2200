"""One line of the server's request log, for the window's Server panel and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestLogEntry:
    """What one request did.

    Attributes:
        endpoint: e.g. "POST /v1/chat/completions".
        status: the HTTP status answered (200 also for a stream the client left;
            ``note`` then says so).
        tokens: completion tokens generated (0 when refused).
        tokens_per_second: generation speed of the answer, 0 when none.
        acceptance: accepted / drafted tokens, None when nothing was drafted.
        note: a short reason for errors and cancellations.
    """

    endpoint: str
    status: int
    tokens: int = 0
    tokens_per_second: float = 0.0
    acceptance: float | None = None
    note: str = ""
    at: float = field(default_factory=time.time)

    def line(self) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(self.at))
        accept = f"{self.acceptance:.0%}" if self.acceptance is not None else "-"
        text = (
            f"{clock} {self.endpoint} {self.status} {self.tokens} tok "
            f"{self.tokens_per_second:.1f} t/s accept {accept}"
        )
        return f"{text} ({self.note})" if self.note else text


RequestLogger = Callable[[RequestLogEntry], None]
