"""``--draft-max auto`` (the adaptive draft length) keeps the engine's exactness."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from core.cli.generate_command import build_parser, generation_settings
from core.cli.tune_commands import run_ab_command, run_sweep_command
from core.engine import (
    ChatMessage,
    DraftSettings,
    GenerationSettings,
    SamplingSettings,
    SpeculativeEngine,
    Verification,
    collect,
)
from core.engine.config import AUTO_DRAFT_MAX, parse_draft_max
from core.errors import ConfigError
from tests.conftest import TinyModels

PROMPTS = (
    "Write a short story about a robot who learns to paint.",
    "Write a Python function that reverses a string.",
    "Summarise: the council met on Thursday to discuss new bicycle lanes on Main Street.",
)
AUTO = DraftSettings(n_max=AUTO_DRAFT_MAX, adaptive=True)


def test_draft_max_auto_parses_to_the_adaptive_length() -> None:
    assert parse_draft_max("auto") == (AUTO_DRAFT_MAX, True)
    assert parse_draft_max(" AUTO ") == (AUTO_DRAFT_MAX, True)
    assert parse_draft_max("8") == (8, None)
    with pytest.raises(ConfigError, match="draft-max must be a whole number or 'auto'"):
        parse_draft_max("eight")
    auto = generation_settings(build_parser().parse_args(["--draft-max", "auto", "-p", "x"]))
    assert auto.drafting.adaptive and auto.drafting.n_max == AUTO_DRAFT_MAX
    # "auto" wins over --no-adaptive-draft; a number follows the flag.
    args = ["--draft-max", "auto", "--no-adaptive-draft", "-p", "x"]
    assert generation_settings(build_parser().parse_args(args)).drafting.adaptive
    args = ["--draft-max", "6", "--no-adaptive-draft", "-p", "x"]
    fixed = generation_settings(build_parser().parse_args(args)).drafting
    assert fixed.n_max == 6 and not fixed.adaptive
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--draft-max", "lots", "-p", "x"])


@pytest.mark.demo_pair
def test_auto_greedy_output_equals_plain_on_the_demo_pair(
    demo_engine: SpeculativeEngine,
) -> None:
    drafted = 0
    for seed, prompt_text in enumerate(PROMPTS, start=1):
        prompt = demo_engine.tokenize_chat([ChatMessage("user", prompt_text)])
        sampling = SamplingSettings(temperature=0.0, seed=seed)
        plain_settings = GenerationSettings(
            n_predict=48, sampling=sampling, drafting=DraftSettings(n_max=0)
        )
        plain = collect(demo_engine.generate(prompt, plain_settings))
        auto_settings = GenerationSettings(n_predict=48, sampling=sampling, drafting=AUTO)
        auto = collect(demo_engine.generate(prompt, auto_settings))
        assert auto.token_ids == plain.token_ids, prompt_text
        drafted += auto.stats.n_drafted
    assert drafted > 0  # the adaptive length did draft, so the comparison means something


def test_auto_with_sample_and_match_repeats_the_plain_answer_of_each_seed(
    tiny_engine: SpeculativeEngine,
) -> None:
    for prompt_text in ("Tell me a story", "the cat and the dog"):
        prompt = tiny_engine.tokenize_chat([ChatMessage("user", prompt_text)])
        for seed in (3, 4, 5):
            sampling = SamplingSettings(temperature=0.8, seed=seed)
            plain = collect(
                tiny_engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=32, sampling=sampling, drafting=DraftSettings(n_max=0)
                    ),
                )
            )
            auto = collect(
                tiny_engine.generate(
                    prompt,
                    GenerationSettings(
                        n_predict=32,
                        sampling=sampling,
                        drafting=DraftSettings(
                            n_max=AUTO_DRAFT_MAX, adaptive=True, verification=Verification.MATCH
                        ),
                    ),
                )
            )
            assert auto.token_ids == plain.token_ids, (prompt_text, seed)


def _tiny_args(tiny_models: TinyModels) -> list[str]:
    return ["-m", str(tiny_models.target), "-md", str(tiny_models.draft), "-t", "2", "-n", "16"]


def _prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("Tell me a story\n---\nthe cat and the dog\n")
    return path


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_sweep_json_has_results_and_baseline(tiny_models: TinyModels, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = [*_tiny_args(tiny_models), "--prompts", str(_prompt_file(tmp_path))]
    code = run_sweep_command(
        [*args, "--draft-max", "2,4", "--draft-p-min", "0,0.5", "--json"], out, err
    )
    assert code == 0
    data = json.loads(out.getvalue())
    assert data["baseline"]["decode_tokens_per_second"] > 0
    assert len(data["results"]) == 4 and not data["partial"]
    for row in data["results"]:
        assert {"settings", "decode_tokens_per_second", "speedup", "acceptance"} <= set(row)
        assert row["identical_to_plain"]  # greedy by default
    assert {row["settings"]["draft_max"] for row in data["results"]} == {2, 4}

    out, err = io.StringIO(), _Terminal()
    assert run_sweep_command([*args, "--auto", "--json"], out, err) == 0
    results = json.loads(out.getvalue())["results"]
    assert len(results) == 1 and results[0]["settings"]["draft_max"] == "auto"
    # On a terminal the progress line names the adaptive warm-up, then counts the
    # measured answers, each redraw covering the longer line before it.
    lines = err.getvalue().split("\r")
    warm_up = "warming up model auto on the set: answer 1 of at most 2, not measured"
    assert warm_up in lines
    after = lines[lines.index(warm_up) + 1 :]
    counts = [line for line in after if not line.startswith("warming up")]
    assert counts[0] == "0/4 answers".ljust(len(warm_up))
    assert counts[-1].rstrip() == "4/4 answers"

    out = io.StringIO()
    assert run_sweep_command([*args, "--draft-max", "2,4"], out, io.StringIO()) == 0
    table = out.getvalue()
    assert "plain" in table and "model max=2" in table
    # The fastest row is starred only when it beat plain decoding.
    starred = sum(line.startswith("* ") for line in table.splitlines())
    if "marks the fastest" in table:
        assert starred == 1
    else:
        assert starred == 0 and "no draft setting beat plain decoding" in table


def test_cli_sweep_names_a_bad_prompt_file(tiny_models: TinyModels, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(ConfigError, match=r"cannot read prompt file .*missing\.txt"):
        run_sweep_command([*_tiny_args(tiny_models), "--prompts", str(missing)])


def test_cli_ab_prints_both_answers_and_the_speedup(tiny_models: TinyModels) -> None:
    out = io.StringIO()
    args = [*_tiny_args(tiny_models), "-p", "Tell me a story", "--draft-max", "4", "--json"]
    assert run_ab_command(args, out) == 0
    data = json.loads(out.getvalue())
    assert data["identical"] and data["identity_promised"]
    assert data["plain"]["stats"]["n_drafted"] == 0
    assert data["speculative"]["stats"]["n_drafted"] > 0
    out = io.StringIO()
    assert run_ab_command(args[:-1], out) == 0
    assert "--- plain" in out.getvalue() and "speed-up" in out.getvalue()
