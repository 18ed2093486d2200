"""Token formats differ per provenance in colour and in a cue that is not hue, in both themes."""

from __future__ import annotations

from itertools import combinations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QFont, QTextCharFormat
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.engine.events import Provenance, RejectedToken
from core.speculation.trace import TokenInfo
from gui.chat.legend import ProvenanceLegend
from gui.chat.token_formats import OKABE_ITO, TokenFormats, token_formats
from gui.theme import DARK, LIGHT, build_palette, is_dark


def colour_of(char_format: QTextCharFormat) -> str:
    """The tint as #aarrggbb, or "none"."""
    if char_format.background().style().name == "NoBrush":
        return "none"
    return (
        char_format.background().color().name(char_format.background().color().NameFormat.HexArgb)
    )


def second_cue(char_format: QTextCharFormat) -> tuple[object, ...]:
    """Everything that tells tokens apart without hue."""
    return (
        char_format.underlineStyle(),
        char_format.fontWeight() >= QFont.Weight.Bold,
        char_format.fontStrikeOut(),
        char_format.fontItalic(),
        char_format.background().style().name != "NoBrush",
    )


@pytest.mark.parametrize("dark", [False, True])
def test_provenances_differ_in_colour_and_second_cue(dark: bool) -> None:
    formats = token_formats(dark)
    all_formats = [formats.token_format(p) for p in Provenance] + [formats.ghost_format()]
    for first, second in combinations(all_formats, 2):
        assert colour_of(first) != colour_of(second) or (
            first.foreground().color() != second.foreground().color()
        )
        assert second_cue(first) != second_cue(second)


@pytest.mark.parametrize("dark", [False, True])
def test_corrections_stand_out_from_accepted_drafts(dark: bool) -> None:
    formats = token_formats(dark)
    accepted = formats.token_format(Provenance.DRAFT_ACCEPTED)
    correction = formats.token_format(Provenance.TARGET_CORRECTION)
    bonus = formats.token_format(Provenance.TARGET_BONUS)
    assert correction.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline
    assert correction.fontWeight() == QFont.Weight.Bold
    assert bonus.underlineStyle() == QTextCharFormat.UnderlineStyle.DotLine
    assert accepted.underlineStyle() == QTextCharFormat.UnderlineStyle.NoUnderline
    # Okabe-Ito hues, translucent so they sit on either theme's base colour.
    assert accepted.background().color().name().upper() == OKABE_ITO["bluish_green"]
    assert correction.background().color().name().upper() == OKABE_ITO["vermillion"]
    assert 0 < accepted.background().color().alphaF() < 1


def test_dark_theme_tints_are_stronger() -> None:
    light = token_formats(False).token_format(Provenance.DRAFT_ACCEPTED).background().color()
    dark = token_formats(True).token_format(Provenance.DRAFT_ACCEPTED).background().color()
    assert dark.alphaF() > light.alphaF()
    assert token_formats(True) is token_formats(True)


def test_rejected_drafts_are_ghosted_and_struck_through() -> None:
    for dark in (False, True):
        ghost = token_formats(dark).ghost_format()
        assert ghost.fontStrikeOut()
        assert ghost.foreground().color().alphaF() < 0.5


def test_token_tooltip_says_provenance_step_position_confidence() -> None:
    formats = TokenFormats(dark=False)
    accepted = TokenInfo(5, " the", Provenance.DRAFT_ACCEPTED, 11, 3, 0.873)
    text = formats.token_tooltip(accepted)
    assert "accepted draft" in text
    assert "Step 12" in text
    assert "draft token 3" in text
    assert "87%" in text
    correction = TokenInfo(
        6, "<b>", Provenance.TARGET_CORRECTION, 0, 2, None, (RejectedToken(7, "x", 0.4),)
    )
    text = formats.token_tooltip(correction)
    assert "correction" in text and "in place of draft token 2" in text
    assert "&lt;b&gt;" in text  # token text is shown, never taken for markup
    assert "Rejected here: x (40%)" in text
    bonus = formats.token_tooltip(TokenInfo(8, "\n", Provenance.TARGET_BONUS, 2, 4, None))
    assert "bonus" in bonus and "position 4" in bonus and "↵" in bonus
    only = formats.token_tooltip(TokenInfo(9, "a", Provenance.TARGET_ONLY, 3, None, None))
    assert "target only" in only and "confidence" not in only
    ghost = formats.ghost_tooltip(RejectedToken(7, "x", 0.25))
    assert "rejected draft" in ghost and "25%" in ghost


def test_legend_follows_the_theme_and_the_rejected_toggle(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    original = app.palette()
    app.setPalette(build_palette(LIGHT))
    try:
        legend = ProvenanceLegend()
        qtbot.addWidget(legend)
        assert legend.rejected_sample.isHidden()
        legend.set_show_rejected(True)
        assert not legend.rejected_sample.isHidden()
        assert all(sample.sizeHint().width() > 0 for sample in legend.samples.values())
        assert legend.formats() is token_formats(False)
        app.setPalette(build_palette(DARK))
        assert is_dark()
        assert legend.formats() is token_formats(True)
        # Qt delivers the palette change to widgets as a posted event.
        qtbot.waitUntil(lambda: legend._dark is True)
        legend.grab()  # paints every sample without a warning
    finally:
        app.setPalette(original)


def test_legend_wraps_its_entries_when_narrow(qtbot: QtBot) -> None:
    legend = ProvenanceLegend()
    qtbot.addWidget(legend)
    one_row = legend.sizeHint()
    # Narrow: the entries move onto more rows instead of being cut off or forcing the
    # window wide (its minimum is its widest entry, not the whole row).
    assert legend.hasHeightForWidth()
    assert legend.minimumSizeHint().width() < one_row.width() // 2
    assert legend.heightForWidth(one_row.width()) == one_row.height()
    assert legend.heightForWidth(one_row.width() // 2) > one_row.height()
    narrow = QRect(0, 0, one_row.width() // 2, legend.heightForWidth(one_row.width() // 2))
    layout = legend.layout()
    assert layout is not None
    layout.setGeometry(narrow)
    for sample in legend.samples.values():
        if not sample.isHidden():
            assert narrow.contains(sample.geometry())
