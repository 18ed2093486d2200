"""Prompt sets a sweep runs on: the built-in ones in ``resources/prompts/``, a user's
file of prompts, or a conversation.

A prompt is a list of chat messages (the conversation so far, ending with the
user's turn), so a sweep measures the same thing the chat does.

File formats read by ``load_prompt_file``:

* ``.json``: a list of strings (one prompt each), a list of ``{"role", "content"}``
  objects (one conversation: the prompt is the whole of it), or an object with a
  ``"prompts"`` list (the built-in sets' format).
* anything else: plain text, prompts separated by a line holding only ``---``
  (a file without such a line is one prompt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.engine import ChatMessage
from core.errors import ConfigError
from core.resource_files import read_resource_text, resource

PROMPTS_FOLDER = "prompts"
BUILT_IN_SETS = ("chat", "code", "rewrite")
_SEPARATOR = "---"


@dataclass(frozen=True)
class PromptSet:
    """Named prompts, each a conversation ending with the user's message."""

    name: str
    prompts: tuple[tuple[ChatMessage, ...], ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ConfigError(f"prompt set {self.name!r} has no prompts")

    def first_lines(self) -> list[str]:
        """Each prompt's last user message, shortened: for lists and tables."""
        return [prompt[-1].content.splitlines()[0][:80] for prompt in self.prompts]


def _user(text: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", text),)


def built_in_set(name: str) -> PromptSet:
    """One of ``BUILT_IN_SETS``; ConfigError naming the known ones otherwise."""
    if name not in BUILT_IN_SETS or not resource(PROMPTS_FOLDER, f"{name}.json").is_file():
        raise ConfigError(f"unknown prompt set {name!r}; built-in sets: {', '.join(BUILT_IN_SETS)}")
    data = json.loads(read_resource_text(PROMPTS_FOLDER, f"{name}.json"))
    return prompt_set_from_data(name, data)


def prompt_set_from_data(name: str, data: Any) -> PromptSet:
    """A set from parsed JSON (see the module docstring for the shapes)."""
    description = ""
    if isinstance(data, dict):
        description = str(data.get("description", ""))
        data = data.get("prompts")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"prompt set {name!r}: expected a non-empty list of prompts")
    if all(isinstance(item, str) for item in data):
        prompts = tuple(_user(item) for item in data if item.strip())
    elif all(isinstance(item, dict) for item in data):
        prompts = (_conversation(name, data),)
    else:
        raise ConfigError(
            f"prompt set {name!r}: a list of prompt strings or of "
            '{"role": ..., "content": ...} messages, not a mix'
        )
    return PromptSet(name, prompts, description)


def _conversation(name: str, items: list[dict[str, Any]]) -> tuple[ChatMessage, ...]:
    messages = []
    for item in items:
        role, content = item.get("role"), item.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise ConfigError(
                f"prompt set {name!r}: each message needs a role (system, user or assistant) "
                f"and a content string; got {item!r}"
            )
        messages.append(ChatMessage(role, content))
    # The answer being measured is the next assistant turn.
    while messages and messages[-1].role == "assistant":
        messages.pop()
    if not messages:
        raise ConfigError(f"prompt set {name!r}: the conversation has no user message")
    return tuple(messages)


def prompt_set_from_texts(name: str, texts: list[str]) -> PromptSet:
    """A set of single-message prompts (the user's own)."""
    return PromptSet(name, tuple(_user(text) for text in texts if text.strip()))


def conversation_prompt_set(name: str, messages: list[ChatMessage]) -> PromptSet:
    """The next answer of one conversation, as a set of one prompt."""
    return PromptSet(
        name, (_conversation(name, [{"role": m.role, "content": m.content} for m in messages]),)
    )


def load_prompt_file(path: Path) -> PromptSet:
    """Prompts from a user's file; ConfigError naming the file when it can't be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read prompt file {path}: {exc.strerror}") from exc
    name = path.stem
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"prompt file {path} is not valid JSON: {exc}") from exc
        return prompt_set_from_data(name, data)
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == _SEPARATOR:
            chunks.append([])
        else:
            chunks[-1].append(line)
    texts = ["\n".join(chunk).strip() for chunk in chunks]
    if not any(texts):
        raise ConfigError(f"prompt file {path} holds no prompt")
    return prompt_set_from_texts(name, texts)
