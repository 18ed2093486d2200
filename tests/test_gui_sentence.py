"""Core messages shown alone in the window start with a capital, file names keep theirs."""

from __future__ import annotations

from gui.sentence import as_sentence


def test_a_plain_first_word_is_capitalised_and_a_name_is_not() -> None:
    assert as_sentence("cannot reach the Hub at x") == "Cannot reach the Hub at x"
    assert as_sentence("tiny-vocab.gguf cannot draft") == "tiny-vocab.gguf cannot draft"
    assert as_sentence("n_ctx must be positive") == "n_ctx must be positive"
    assert as_sentence("Already a sentence.") == "Already a sentence."
    assert as_sentence("") == ""
