"""``specchat-cli sweep`` and ``calibrate`` output: the table's mark and the progress."""

from __future__ import annotations

import io

from core.cli.tune_commands import _print_progress, write_sweep_table
from core.tune.sweep import SweepProgress, WarmUp
from tests.support.sweep_results import measured_sweep


def _marked_rows(table: str) -> list[str]:
    return [line for line in table.splitlines() if line.startswith("*")]


def test_a_setting_slower_than_plain_is_not_starred_as_the_fastest() -> None:
    # The tester's sweep: plain 59.4 tok/s, the only cell 52.5 (0.88x).
    out = io.StringIO()
    write_sweep_table(measured_sweep(59.4, {2: 52.5}), out)
    table = out.getvalue()
    assert _marked_rows(table) == []
    assert "(* marks the fastest setting)" not in table
    assert table.splitlines()[-1] == (
        "no draft setting beat plain decoding on this pair; plain is fastest "
        "(the fastest setting, model max=2 min=0 p=0, ran at 0.88x plain)"
    )


def test_the_fastest_setting_is_starred_when_it_beats_plain() -> None:
    out = io.StringIO()
    write_sweep_table(measured_sweep(50.0, {2: 55.0, 4: 60.0}), out)
    table = out.getvalue()
    [marked] = _marked_rows(table)
    assert "max=4" in marked and "1.20x" in marked
    assert table.splitlines()[-1] == "(* marks the fastest setting)"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(stream: io.StringIO) -> str:
    result = measured_sweep(50.0, {2: 55.0})
    show = _print_progress(stream)
    show(SweepProgress(0, 40, result, warm_up=WarmUp("model auto", 1, 4)))
    show(SweepProgress(0, 40, result, warm_up=WarmUp("model auto", 2, 4)))
    for done in range(41):
        show(SweepProgress(done, 40, result))
        show(SweepProgress(done, 40, result, cells_refreshed=True))
    return stream.getvalue()


def test_progress_in_a_log_file_is_a_few_whole_lines() -> None:
    text = _feed(io.StringIO())
    assert "\r" not in text
    assert text.splitlines() == [
        "warming up model auto on the set: answer 1 of at most 4, not measured",
        "10/40 answers",
        "20/40 answers",
        "30/40 answers",
        "40/40 answers",
    ]


def test_progress_on_a_terminal_is_one_line_redrawn() -> None:
    text = _feed(_Terminal())
    assert text.count("\r") == 2 + 41 and text.endswith("40/40 answers\n")
    assert text.count("\n") == 1
