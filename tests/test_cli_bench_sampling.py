"""``specchat-cli bench --temp``: a greedy table and a sampled one."""

from __future__ import annotations

import pytest

from core.cli.main import main
from tests.conftest import TinyModels


def test_bench_reports_greedy_and_sampled_tables(
    capsys: pytest.CaptureFixture[str], tiny_models: TinyModels
) -> None:
    argv = ["bench", "-m", str(tiny_models.target), "-md", str(tiny_models.draft),
            "-n", "12", "--repeats", "1", "-p", "the cat", "--draft-max", "3",
            "--temp", "0.7", "-t", "1", "--no-ngram"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    greedy, sampled = out.split("greedy (temperature 0)\n")[1].split("\ntemperature 0.7")
    greedy_rows = {line[:16].strip(): line for line in greedy.splitlines()[1:] if line}
    sampled_rows = {line[:16].strip(): line for line in sampled.splitlines()[2:] if line}
    assert set(greedy_rows) == {"plain", "draft max=3"}
    assert set(sampled_rows) == {"plain", "draft max=3", "match max=3"}
    assert all(row.endswith("1/1") for row in greedy_rows.values())
    # The same seed: sample-and-match reproduces plain; speculative sampling need not.
    assert sampled_rows["match max=3"].endswith("1/1")
    assert sampled_rows["draft max=3"].endswith("-")
