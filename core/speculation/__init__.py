"""What speculation did in an answer: per-token provenance and the numbers behind the graphs."""

from core.speculation.trace import (
    AnswerTrace,
    ConversationTrace,
    RejectedDraft,
    TokenInfo,
)

__all__ = ["AnswerTrace", "ConversationTrace", "RejectedDraft", "TokenInfo"]
