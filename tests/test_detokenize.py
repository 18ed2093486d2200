"""Incremental text decoding and stop-string holdback, below the engine."""

from __future__ import annotations

from core.engine.detokenize import IncrementalDetokenizer, StopStringHoldback
from core.engine.events import EmittedToken, Provenance

P = Provenance.TARGET_ONLY


def tokens(*texts: str) -> list[EmittedToken]:
    return [EmittedToken(index, text, P) for index, text in enumerate(texts)]


def test_character_split_across_tokens_appears_whole_with_the_last_piece() -> None:
    detokenizer = IncrementalDetokenizer()
    emoji = "😀".encode()
    pieces = [b"hi ", emoji[:1], emoji[1:3], emoji[3:], b"!"]
    assert [detokenizer.feed(p) for p in pieces] == ["hi ", "", "", "😀", "!"]
    assert detokenizer.flush() == ""


def test_incomplete_character_at_the_end_becomes_a_replacement_character() -> None:
    detokenizer = IncrementalDetokenizer()
    assert detokenizer.feed("é".encode()[:1]) == ""
    assert detokenizer.flush() == "\ufffd"


def test_holdback_without_stop_strings_releases_everything() -> None:
    holdback = StopStringHoldback(())
    released, stopped = holdback.feed(tokens("a", "b"))
    assert [t.text for t in released] == ["a", "b"] and not stopped


def test_stop_string_split_across_tokens_is_never_shown() -> None:
    holdback = StopStringHoldback(("###",))
    shown, stopped = holdback.feed(tokens("Hello", " #"))
    assert [t.text for t in shown] == ["Hello"] and not stopped
    shown, stopped = holdback.feed(tokens("#", "# tail"))
    assert stopped
    assert [t.text for t in shown] == [" "]


def test_false_alarm_is_released_once_it_cannot_match() -> None:
    holdback = StopStringHoldback(("STOP",))
    shown, _ = holdback.feed(tokens("ST"))
    assert shown == []
    shown, stopped = holdback.feed(tokens("AR"))
    assert [t.text for t in shown] == ["ST", "AR"] and not stopped


def test_flush_returns_what_was_held() -> None:
    holdback = StopStringHoldback(("STOP",))
    holdback.feed(tokens("x", "ST"))
    assert [t.text for t in holdback.flush()] == ["ST"]
