"""Token bytes to text, safe for characters split across tokens, and stop strings."""

from __future__ import annotations

import codecs
from dataclasses import replace

from core.engine.events import EmittedToken


class IncrementalDetokenizer:
    """Turns a stream of token byte pieces into text.

    A UTF-8 character can span tokens (emoji, CJK in byte-level vocabularies); the
    incremental decoder holds partial bytes back, so the token that completes the
    character carries it and no replacement characters appear mid-stream.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        """Whatever is still pending at the end (an incomplete character: U+FFFD)."""
        return self._decoder.decode(b"", final=True)


# The longest incomplete UTF-8 character: all a decoder can still be waiting for.
_MAX_PENDING_BYTES = 3


def continuation_texts(context: bytes, pieces: list[bytes]) -> list[str]:
    """The text each piece adds when it streams right after ``context``.

    For rejected draft tokens, shown after the text accepted so far: decoded alone,
    a token that finishes a character begun before it would show U+FFFD. Only the
    last few bytes of ``context`` matter. Bytes still waiting for the rest of their
    character at the end are not shown (the draft never finished that character).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # Bytes cut off mid-character at the front decode to U+FFFD and are discarded
    # with the rest; the decoder is back in step by the end of the context.
    decoder.decode(context[-_MAX_PENDING_BYTES:])
    return [decoder.decode(piece) for piece in pieces]


class StopStringHoldback:
    """Holds back tokens whose text could be the start of a stop string.

    Without it a stop string split across tokens would flash on screen and then
    vanish, or leak into the answer. Works on whole tokens so that every character
    shown keeps its token's provenance.
    """

    def __init__(self, stop_strings: tuple[str, ...]) -> None:
        self._stop_strings = tuple(s for s in stop_strings if s)
        self._pending: list[EmittedToken] = []
        # After a hit: the token whose text was cut before the stop string, as it
        # was before the cut (its id still stands for the whole text).
        self.cut_token: EmittedToken | None = None

    def feed(self, tokens: list[EmittedToken]) -> tuple[list[EmittedToken], bool]:
        """Returns the tokens safe to show now, and whether a stop string was hit.

        On a hit, the tokens end right before the stop string (the token holding its
        first characters is cut), and everything after is dropped.
        """
        if not self._stop_strings:
            return tokens, False
        self._pending.extend(tokens)
        text = "".join(token.text for token in self._pending)
        hits = [index for stop in self._stop_strings if (index := text.find(stop)) >= 0]
        if hits:
            released = self._take_until(min(hits), cut_straddling=True)
            self._pending = []
            return released, True
        released = self._take_until(len(text) - self._longest_partial_match(text), False)
        # A token without text yet holds the first bytes of a character that a later
        # token completes; keep them together so that a cut at a stop string can drop
        # or re-tokenize the whole character, not leave its first bytes behind.
        while released and not released[-1].text:
            self._pending.insert(0, released.pop())
        return released, False

    def flush(self) -> list[EmittedToken]:
        tokens, self._pending = self._pending, []
        return tokens

    def _take_until(self, boundary: int, cut_straddling: bool) -> list[EmittedToken]:
        released: list[EmittedToken] = []
        offset = 0
        for count, token in enumerate(self._pending):
            end = offset + len(token.text)
            if end <= boundary:
                released.append(token)
                offset = end
                continue
            if cut_straddling and boundary > offset:
                released.append(replace(token, text=token.text[: boundary - offset]))
                self.cut_token = token
            self._pending = self._pending[count:]
            return released
        self._pending = []
        return released

    def _longest_partial_match(self, text: str) -> int:
        best = 0
        for stop in self._stop_strings:
            for length in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:length]):
                    best = length
                    break
        return best
