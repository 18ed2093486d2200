"""Sizes, counts and durations read the same in the window, the CLI and the errors."""

from __future__ import annotations

from core.human_units import format_bytes, format_count, format_duration, format_gib, format_wait


def test_bytes_pick_the_unit_a_person_reads_and_stop_at_gib() -> None:
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1024) == "1.0 KiB"
    assert format_bytes(138.1 * 1024 * 1024) == "138.1 MiB"
    assert format_bytes(5 << 40) == "5120.0 GiB"
    assert format_bytes(-2048) == "-2.0 KiB"


def test_memory_is_always_in_gib() -> None:
    assert format_gib(3 << 29) == "1.50 GiB"


def test_counts_and_times() -> None:
    assert format_count(999) == "999"
    assert format_count(134_515_008) == "134.5M"
    # Where rounding reaches the next unit, the next unit is used.
    assert format_count(999_999) == "1.0M" and format_count(999_960_000) == "1.0B"
    assert format_count(999_940) == "999.9k" and format_count(1_000) == "1.0k"
    assert format_duration(None) == "--:--"
    assert format_duration(185) == "3:05"
    assert format_duration(3723) == "1:02:03"
    assert format_wait(45) == "45 s"
    assert format_wait(180) == "3 min"
    assert format_wait(7200) == "2 h"
