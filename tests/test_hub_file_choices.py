"""Grouping a repository's GGUF files into choices with a fit verdict and a default."""

from __future__ import annotations

from core.hub.file_choices import FitVerdict, fit_verdict, group_model_files
from core.hub.files import HubFile
from core.hub.quant import quantization_from_filename

GIB = 1 << 30


def hub_file(name: str, size: int | None) -> HubFile:
    return HubFile(name, size, None, quantization_from_filename(name))


def test_verdicts_against_the_budget() -> None:
    assert fit_verdict(7 * GIB, 10 * GIB) is FitVerdict.FITS
    assert fit_verdict(9 * GIB, 10 * GIB) is FitVerdict.TIGHT
    assert fit_verdict(11 * GIB, 10 * GIB) is FitVerdict.TOO_BIG
    assert fit_verdict(None, 10 * GIB) is FitVerdict.UNKNOWN


def test_shards_are_one_choice_and_the_largest_fitting_quant_is_the_default() -> None:
    files = [
        hub_file("m.Q4_K_M.gguf", 4 * GIB),
        hub_file("m.Q8_0.gguf", 7 * GIB),
        hub_file("m.F16-00001-of-00002.gguf", 6 * GIB),
        hub_file("m.F16-00002-of-00002.gguf", 6 * GIB),
        hub_file("broken.Q2_K-00001-of-00002.gguf", GIB),  # its second part is missing
    ]
    choices = group_model_files(files, budget_bytes=10 * GIB)
    assert [c.name for c in choices] == ["m.Q4_K_M", "m.Q8_0", "m.F16"]
    sharded = choices[2]
    assert sharded.sharded and sharded.size == 12 * GIB
    assert sharded.verdict is FitVerdict.TOO_BIG
    assert [c.default for c in choices] == [False, True, False]


def test_q4_k_m_is_the_default_when_nothing_is_known() -> None:
    files = [hub_file(f"m.{q}.gguf", None) for q in ("Q2_K", "Q4_K_M", "Q8_0")]
    choices = group_model_files(files, budget_bytes=None)
    assert [c.quantization for c in choices if c.default] == ["Q4_K_M"]
    assert all(c.verdict is FitVerdict.UNKNOWN for c in choices)


def test_nothing_is_recommended_when_nothing_fits() -> None:
    files = [hub_file("m.Q4_K_M.gguf", 40 * GIB), hub_file("m.Q8_0.gguf", 70 * GIB)]
    assert not any(c.default for c in group_model_files(files, budget_bytes=8 * GIB))
