"""Exports: Markdown to read, JSON with every token's provenance to analyse."""

from __future__ import annotations

import json

from core.engine.events import Provenance, StopReason
from core.store import ConversationStore, steps_from_export
from tests.support.stored_answers import MODEL_PAIR, SETTINGS, finished, step

pytest_plugins = ["tests.store_fixtures"]


def _conversation(store: ConversationStore) -> int:
    conversation = store.create_conversation("Greetings", system_prompt="Be brief.\nBe kind.")
    store.add_user_message(conversation, "Say hello")
    answer = store.begin_answer(conversation, SETTINGS, MODEL_PAIR)
    store.append_steps(
        answer,
        [
            (step("Hel", "lo", last=Provenance.TARGET_BONUS), 0.05),
            (step(",", " fr", rejected=("iend", "s"), last=Provenance.TARGET_CORRECTION), 0.08),
            (step("iend", provenance=Provenance.TARGET_ONLY), 0.1),
        ],
    )
    store.finish_answer(answer, finished(n_predict=6, n_drafted=6, n_accept=3))
    store.add_user_message(conversation, "Show code")
    cut = store.begin_answer(
        conversation, SETTINGS, {"target_path": "/m/t.gguf", "draft_path": None}
    )
    store.append_steps(cut, [(step("```python\n", "print(1)"), 0.1)])
    store.finish_answer(cut, None)
    return conversation


def test_markdown_export_reads_like_the_chat(store: ConversationStore) -> None:
    markdown = store.export_markdown(_conversation(store))
    assert markdown.startswith("# Greetings\n")
    assert "**System prompt**\n\n> Be brief.\n> Be kind.\n" in markdown
    assert markdown.count("## User") == 2 and markdown.count("## Assistant") == 2
    assert "Say hello\n\n## Assistant\n\nHello, friend\n" in markdown
    assert (
        "*6 tokens · 24.0 tokens/s · acceptance 50.0% (3 of 6 drafted) · "
        "1.50 tokens per target pass · end of answer · "
        "SmolLM2-360M-Instruct-Q8_0.gguf + SmolLM2-135M-Instruct-Q8_0.gguf on CPU*"
    ) in markdown
    # The interrupted answer is marked, and its open code block is closed.
    assert "```python\nprint(1)\n```\n\n*interrupted · t.gguf*" in markdown
    assert markdown.index("Say hello") < markdown.index("Hello, friend") < markdown.index("Show")


def test_markdown_export_of_an_answer_without_drafting(store: ConversationStore) -> None:
    conversation = store.create_conversation("Plain")
    store.add_user_message(conversation, "hi")
    answer = store.begin_answer(
        conversation, SETTINGS, {"target_path": "t.gguf", "draft_path": None}
    )
    store.append_steps(answer, [(step("yo", provenance=Provenance.TARGET_ONLY), 0.1)])
    store.finish_answer(
        answer, finished(n_predict=1, n_drafted=0, n_accept=0, stop_reason=StopReason.CANCELLED)
    )
    markdown = store.export_markdown(conversation)
    assert "*1 token · 4.0 tokens/s · no drafting · stopped by the user · t.gguf*" in markdown
    assert "System prompt" not in markdown


def test_json_export_keeps_provenance_rejections_and_stats(store: ConversationStore) -> None:
    conversation = _conversation(store)
    exported = json.loads(json.dumps(store.export_json(conversation)))  # plain JSON types
    assert exported["format"] == "specchat.conversation"
    assert (exported["title"], exported["system_prompt"]) == ("Greetings", "Be brief.\nBe kind.")
    user, answer, _, cut = exported["messages"]
    assert user == {"role": "user", "text": "Say hello", "created_at": user["created_at"]}

    assert answer["text"] == "Hello, friend"
    assert answer["provenance_counts"] == {
        "draft_accepted": 2,
        "target_bonus": 1,
        "target_correction": 1,
        "target_only": 1,
    }
    assert "".join(token["text"] for token in answer["tokens"]) == answer["text"]
    assert [t["draft_probability"] for t in answer["tokens"]] == [0.75, None, 0.75, None, None]
    assert [t["step"] for t in answer["tokens"]] == [0, 0, 1, 1, 2]
    assert answer["rejected"] == [
        {"id": 7, "text": "iend", "draft_probability": 0.25, "step": 1},
        {"id": 7, "text": "s", "draft_probability": 0.25, "step": 1},
    ]
    assert [s["at_s"] for s in answer["steps"]] == [0.05, 0.08, 0.1]
    assert answer["stats"]["n_drafted"] == 6 and answer["stats"]["acceptance"] == 0.5
    assert (answer["stop_reason"], answer["interrupted"]) == ("eos", False)
    assert (answer["settings"], answer["model_pair"]) == (SETTINGS, MODEL_PAIR)

    assert cut["interrupted"] is True
    assert (cut["stop_reason"], cut["stats"]) == (None, None)


def test_json_export_round_trips_the_stored_steps(store: ConversationStore) -> None:
    conversation = _conversation(store)
    exported = json.loads(json.dumps(store.export_json(conversation)))
    stored = store.load_conversation(conversation).messages
    for message, original in zip(exported["messages"], stored, strict=True):
        if message["role"] == "assistant":
            assert steps_from_export(message) == original.steps
