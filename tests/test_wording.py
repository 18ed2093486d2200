"""Messages joined from several sources read as sentences."""

from __future__ import annotations

from core.wording import with_full_stop


def test_a_reason_ends_its_sentence_once() -> None:
    assert with_full_stop("RPC worker a:1 stopped answering") == "RPC worker a:1 stopped answering."
    assert with_full_stop("the engine was killed (SIGKILL). ") == "the engine was killed (SIGKILL)."
    assert with_full_stop("really?") == "really?" and with_full_stop("") == ""
