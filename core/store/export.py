"""A conversation as Markdown (to read and share) or as JSON (to analyse and re-import).

The JSON keeps everything the window shows: each answer's tokens with their
provenance and draft probability, the rejected drafts, step timings, the stats,
the settings and the model pair. ``steps_from_export`` turns it back into the
stored steps.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from core.engine.events import (
    FinishedEvent,
    GenerationStats,
    StepEvent,
    event_from_dict,
    event_to_dict,
)
from core.store.records import Conversation, StoredMessage, StoredStep

JSON_FORMAT = "specchat.conversation"
JSON_FORMAT_VERSION = 1

STOP_REASON_WORDS = {
    "eos": "end of answer",
    "n_predict": "answer length limit",
    "stop_string": "stop string",
    "context_full": "context full",
    "cancelled": "stopped by the user",
}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _model_name(value: object) -> str:
    # The window stores model paths; a reader wants the file name.
    return PurePath(str(value)).name if value else "none"


# Markdown


def _close_fences(text: str) -> str:
    # An answer cut off inside a code block would turn the rest of the file into code.
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith("```"))
    return text + "\n```" if fences % 2 else text


def stats_line(message: StoredMessage) -> str:
    """The per-answer line under an exported answer: speed, acceptance, why it stopped."""
    parts: list[str] = []
    if message.finished is not None:
        finished = event_from_dict(message.finished)
        assert isinstance(finished, FinishedEvent)
        stats = finished.stats
        parts.append(f"{stats.n_predict:,} token{'' if stats.n_predict == 1 else 's'}")
        parts.append(f"{stats.decode_tokens_per_second:.1f} tokens/s")
        if stats.n_drafted:
            parts.append(
                f"acceptance {stats.acceptance:.1%} ({stats.n_accept} of {stats.n_drafted} drafted)"
            )
            parts.append(f"{stats.tokens_per_step:.2f} tokens per target pass")
        else:
            parts.append("no drafting")
        parts.append(STOP_REASON_WORDS.get(finished.stop_reason.value, finished.stop_reason))
    if message.interrupted:
        parts.append("interrupted")
    if message.model_pair:
        parts.append(_pair_words(message.model_pair))
    return " · ".join(parts)


def _pair_words(model_pair: dict[str, Any]) -> str:
    """E.g. "big.gguf + small.gguf on CUDA"; model_pair is the window's PairInfo as a dict."""
    words = _model_name(model_pair.get("target_path"))
    if model_pair.get("draft_path"):
        words += " + " + _model_name(model_pair["draft_path"])
    if model_pair.get("backend"):
        words += f" on {model_pair['backend']}"
    return words


def conversation_to_markdown(conversation: Conversation) -> str:
    lines = [f"# {conversation.title}", ""]
    if conversation.system_prompt:
        lines += ["**System prompt**", ""]
        lines += [f"> {line}" if line else ">" for line in conversation.system_prompt.splitlines()]
        lines.append("")
    for message in conversation.messages:
        lines += [f"## {'User' if message.role == 'user' else 'Assistant'}", ""]
        lines += [_close_fences(message.text), ""]
        if message.role == "assistant":
            line = stats_line(message)
            if line:
                lines += [f"*{line}*", ""]
    return "\n".join(lines)


# JSON


def _step_json(index: int, step: StepEvent, at_s: float) -> dict[str, Any]:
    return {
        "index": index,
        "at_s": at_s,
        "n_drafted": step.n_drafted,
        "n_accepted": step.n_accepted,
        "draft_ms": step.draft_ms,
        "verify_ms": step.verify_ms,
    }


def _message_json(message: StoredMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "role": message.role,
        "text": message.text,
        "created_at": _iso(message.created_at),
    }
    if message.role == "user":
        return data
    steps, tokens, rejected = [], [], []
    for index, (step_dict, at_s) in enumerate(message.steps):
        step = event_from_dict(step_dict)
        assert isinstance(step, StepEvent)
        steps.append(_step_json(index, step, at_s))
        tokens += [
            {
                "id": token.id,
                "text": token.text,
                "provenance": token.provenance.value,
                "draft_probability": token.draft_probability,
                "step": index,
            }
            for token in step.tokens
        ]
        rejected += [
            {
                "id": token.id,
                "text": token.text,
                "draft_probability": token.draft_probability,
                "step": index,
            }
            for token in step.rejected
        ]
    finished = message.finished
    data.update(
        interrupted=message.interrupted,
        stop_reason=finished["stop_reason"] if finished else None,
        stop_detail=finished.get("detail", "") if finished else None,
        stats=GenerationStats.from_dict(finished["stats"]).to_dict() if finished else None,
        settings=message.settings,
        model_pair=message.model_pair,
        provenance_counts=dict(Counter(token["provenance"] for token in tokens)),
        steps=steps,
        tokens=tokens,
        rejected=rejected,
    )
    return data


def conversation_to_json(conversation: Conversation) -> dict[str, Any]:
    """A dict of JSON types (``json.dumps`` it as is)."""
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "messages": [_message_json(message) for message in conversation.messages],
    }


def steps_from_export(message: dict[str, Any]) -> list[StoredStep]:
    """Rebuild an exported answer's stored steps (as ``StoredMessage.steps`` holds them)."""
    tokens_by_step: dict[int, list[dict[str, Any]]] = {}
    for token in message["tokens"]:
        tokens_by_step.setdefault(token["step"], []).append(token)
    rejected_by_step: dict[int, list[dict[str, Any]]] = {}
    for token in message["rejected"]:
        rejected_by_step.setdefault(token["step"], []).append(token)
    steps: list[StoredStep] = []
    for step in message["steps"]:
        index = step["index"]
        event = {
            "type": "step",
            "tokens": [
                [t["id"], t["text"], t["provenance"], t["draft_probability"]]
                for t in tokens_by_step.get(index, [])
            ],
            "rejected": [
                [t["id"], t["text"], t["draft_probability"]]
                for t in rejected_by_step.get(index, [])
            ],
            "n_drafted": step["n_drafted"],
            "n_accepted": step["n_accepted"],
            "draft_ms": step["draft_ms"],
            "verify_ms": step["verify_ms"],
        }
        # Normalise through the event types so the result equals what the store holds.
        steps.append((event_to_dict(event_from_dict(event)), step["at_s"]))
    return steps
