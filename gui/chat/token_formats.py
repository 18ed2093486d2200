"""How a token looks by provenance: Okabe-Ito hues plus a second cue that is not hue.

Okabe and Ito's eight colours stay distinct under the common colour-vision
deficiencies, but hue alone is still not enough for everyone, so every
provenance also differs in a cue that survives greyscale:

=================  ===================  ===================================
provenance          tint (Okabe-Ito)     second cue
=================  ===================  ===================================
draft_accepted      bluish green         tinted box, no underline
target_correction   vermillion           bold + wavy underline
target_bonus        sky blue             dotted underline
target_only         none                 plain text (no box, no underline)
rejected draft      none (ghost)         faded text, struck through, italic
=================  ===================  ===================================

Tints are translucent, so they sit on whatever base colour the theme uses; the
dark theme uses a stronger alpha because a faint tint disappears on dark grey.
Text keeps the palette's own colour, so it stays readable in both themes.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont, QTextCharFormat

from core.engine.events import Provenance, RejectedToken
from core.speculation.trace import TokenInfo

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

_HUES: dict[Provenance, str | None] = {
    Provenance.DRAFT_ACCEPTED: OKABE_ITO["bluish_green"],
    Provenance.TARGET_CORRECTION: OKABE_ITO["vermillion"],
    Provenance.TARGET_BONUS: OKABE_ITO["sky_blue"],
    Provenance.TARGET_ONLY: None,
}

PROVENANCE_LABELS: dict[Provenance, str] = {
    Provenance.DRAFT_ACCEPTED: "accepted draft",
    Provenance.TARGET_CORRECTION: "correction",
    Provenance.TARGET_BONUS: "bonus",
    Provenance.TARGET_ONLY: "target only",
}

PROVENANCE_DESCRIPTIONS: dict[Provenance, str] = {
    Provenance.DRAFT_ACCEPTED: "The draft model proposed this token and the target agreed.",
    Provenance.TARGET_CORRECTION: (
        "The target rejected the draft's token here and put its own in its place."
    ),
    Provenance.TARGET_BONUS: (
        "The target accepted every draft token and added this one in the same pass."
    ),
    Provenance.TARGET_ONLY: "No draft this step: the target produced the token alone.",
}

REJECTED_LABEL = "rejected draft"
REJECTED_DESCRIPTION = "A token the draft proposed and the target threw away (not in the answer)."

_UNDERLINES: dict[Provenance, QTextCharFormat.UnderlineStyle] = {
    Provenance.DRAFT_ACCEPTED: QTextCharFormat.UnderlineStyle.NoUnderline,
    Provenance.TARGET_CORRECTION: QTextCharFormat.UnderlineStyle.WaveUnderline,
    Provenance.TARGET_BONUS: QTextCharFormat.UnderlineStyle.DotLine,
    Provenance.TARGET_ONLY: QTextCharFormat.UnderlineStyle.NoUnderline,
}


@dataclass(frozen=True)
class ProvenanceStyle:
    """One provenance's look in one theme (the legend and the plots read it too)."""

    provenance: Provenance
    label: str
    description: str
    hue: QColor | None  # full-strength colour (underline, legend, plots); None: plain
    tint: QColor | None  # translucent box behind the text
    underline: QTextCharFormat.UnderlineStyle
    bold: bool


def _tinted(hue: str, dark: bool) -> QColor:
    colour = QColor(hue)
    colour.setAlphaF(0.42 if dark else 0.26)
    return colour


class TokenFormats:
    """Formats and hover texts for tokens in one theme (the chat view's ``TokenStyle``).

    Formats are shared: callers pass them to ``insertText`` and must not change them.
    """

    def __init__(self, dark: bool) -> None:
        self.dark = dark
        self._styles = {provenance: self._make_style(provenance) for provenance in Provenance}
        self._formats = {provenance: self._make_format(provenance) for provenance in Provenance}
        self._ghost = self._make_ghost()

    def _make_style(self, provenance: Provenance) -> ProvenanceStyle:
        hue = _HUES[provenance]
        return ProvenanceStyle(
            provenance=provenance,
            label=PROVENANCE_LABELS[provenance],
            description=PROVENANCE_DESCRIPTIONS[provenance],
            hue=QColor(hue) if hue else None,
            tint=_tinted(hue, self.dark) if hue else None,
            underline=_UNDERLINES[provenance],
            bold=provenance is Provenance.TARGET_CORRECTION,
        )

    def _make_format(self, provenance: Provenance) -> QTextCharFormat:
        style = self._styles[provenance]
        char_format = QTextCharFormat()
        # Every property is set explicitly (even to "none") so a run never inherits
        # the look of the run before it.
        if style.tint is not None:
            char_format.setBackground(style.tint)
        char_format.setUnderlineStyle(style.underline)
        if style.hue is not None and style.underline != QTextCharFormat.UnderlineStyle.NoUnderline:
            char_format.setUnderlineColor(style.hue)
        char_format.setFontWeight(QFont.Weight.Bold if style.bold else QFont.Weight.Normal)
        char_format.setFontStrikeOut(False)
        char_format.setFontItalic(False)
        return char_format

    def _make_ghost(self) -> QTextCharFormat:
        char_format = QTextCharFormat()
        faded = QColor("#ffffff" if self.dark else "#000000")
        faded.setAlphaF(0.42)
        char_format.setForeground(faded)
        char_format.setFontStrikeOut(True)
        char_format.setFontItalic(True)
        char_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.NoUnderline)
        char_format.setFontWeight(QFont.Weight.Normal)
        return char_format

    def style(self, provenance: Provenance) -> ProvenanceStyle:
        return self._styles[provenance]

    def token_format(self, provenance: Provenance) -> QTextCharFormat:
        return self._formats[provenance]

    def ghost_format(self) -> QTextCharFormat:
        """Rejected draft tokens: faded, struck through, italic."""
        return self._ghost

    def code_background(self) -> QColor:
        """The shade behind a rendered code block.

        The theme's text colour, faint, rather than a fixed grey: it darkens the
        light theme's white and lightens the dark theme's grey by about as much, and
        stays clear of the Okabe-Ito tints on the code's tokens.
        """
        shade = QColor("#ffffff" if self.dark else "#000000")
        shade.setAlphaF(0.07 if self.dark else 0.05)
        return shade

    def token_tooltip(self, info: TokenInfo) -> str:
        return token_tooltip(info)

    def ghost_tooltip(self, token: RejectedToken) -> str:
        return rejected_tooltip(token)


@functools.cache
def token_formats(dark: bool) -> TokenFormats:
    """The formats for a light or dark theme (built once per theme)."""
    return TokenFormats(dark)


def _shown(text: str) -> str:
    """Token text made visible in a tooltip: spaces, newlines and tabs as symbols."""
    visible = text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    return html.escape(visible) if visible else "(empty)"


def _confidence(probability: float | None) -> str:
    return f"{probability * 100:.0f}%" if probability is not None else ""


def token_tooltip(info: TokenInfo) -> str:
    """Hover text: provenance in words, step, draft position, the draft's confidence.

    Rich text (``<qt>``) on purpose: token text such as ``<b>`` must show as is,
    not be taken for markup, so everything of the token's own is escaped.
    """
    lines = [f"<b>{_shown(info.text)}</b> — {PROVENANCE_LABELS[info.provenance]}"]
    lines.append(html.escape(PROVENANCE_DESCRIPTIONS[info.provenance]))
    where = f"Step {info.step_index + 1}"
    if info.provenance is Provenance.DRAFT_ACCEPTED and info.draft_position is not None:
        where += f", draft token {info.draft_position}"
    elif info.provenance is Provenance.TARGET_CORRECTION and info.draft_position is not None:
        where += f", in place of draft token {info.draft_position}"
    elif info.provenance is Provenance.TARGET_BONUS and info.draft_position is not None:
        where += f", position {info.draft_position} (after {info.draft_position - 1} drafts)"
    lines.append(where)
    if info.draft_probability is not None:
        lines.append(f"Draft confidence: {_confidence(info.draft_probability)}")
    if info.rejected_before:
        lines.append(f"Rejected here: {_rejected_run(info.rejected_before)}")
    return "<qt>" + "<br>".join(lines) + "</qt>"


def _rejected_run(tokens: Sequence[RejectedToken]) -> str:
    parts = []
    for token in tokens:
        confidence = _confidence(token.draft_probability)
        parts.append(_shown(token.text) + (f" ({confidence})" if confidence else ""))
    return " ".join(parts)


def rejected_tooltip(token: RejectedToken) -> str:
    """Hover text for a ghosted rejected draft token."""
    lines = [f"<b>{_shown(token.text)}</b> — {REJECTED_LABEL}", html.escape(REJECTED_DESCRIPTION)]
    if token.draft_probability is not None:
        lines.append(f"Draft confidence: {_confidence(token.draft_probability)}")
    return "<qt>" + "<br>".join(lines) + "</qt>"
