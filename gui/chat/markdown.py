"""Markdown for a finished answer, with a copy link in front of every code block.

Qt renders Markdown itself (``QTextDocument.setMarkdown``) but gives code blocks no
copy button; a link inside the same document keeps one document per message
(cheap, selectable as a whole) while still offering one-click copying.

The rendered text is tied back to the answer's own text (``align_rendered``): that
keeps the token colours and the hover text, places rejected drafts, and finds the
model's single newlines, which CommonMark reflows into spaces (``soft_breaks``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

COPY_SCHEME = "copy-code"
# Plain words, not a glyph: a triangle read as "fold this block", and the copy glyphs
# (⧉, ⎘, 📋) are missing from common fonts (DejaVu, the Linux default, has none).
COPY_LINK_LABEL = "Copy code"
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class MarkdownWithCopyLinks:
    """Markdown text to render and the code blocks its ``copy-code:N`` links copy."""

    markdown: str
    code_blocks: tuple[str, ...]


def add_copy_links(text: str) -> MarkdownWithCopyLinks:
    """Put a ``[Copy code](copy-code:N)`` line before each fenced code block.

    An unclosed fence (an answer cut off mid-block) runs to the end, as CommonMark says.
    """
    out: list[str] = []
    blocks: list[str] = []
    fence: str | None = None
    code: list[str] = []
    link_at = 0  # where the open block's link line went in ``out``

    def close_block() -> None:
        # An empty block (a model's stray fences) gets no link: "Copy code" over
        # nothing, copying "", read as a fault.
        copied = "\n".join(code).strip("\n")
        if copied.strip():
            out[link_at] = f"[{COPY_LINK_LABEL}]({COPY_SCHEME}:{len(blocks)})"
            blocks.append(copied)
        else:
            del out[link_at : link_at + 2]

    for line in text.split("\n"):
        if fence is None:
            match = _FENCE.match(line)
            if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
                fence = match.group(2)
                code = []
                if out and out[-1].strip():
                    out.append("")
                link_at = len(out)
                out.extend(["", ""])  # the link and the blank line after it, once known
            out.append(line)
            continue
        out.append(line)
        stripped = line.strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            close_block()
            fence = None
        else:
            code.append(line)
    if fence is not None:
        close_block()
    return MarkdownWithCopyLinks("\n".join(out), tuple(blocks))


def code_block_index(url: str) -> int | None:
    """The block number a copy link points at, or None for any other link."""
    scheme, _, number = url.partition(":")
    if scheme != COPY_SCHEME or not number.isdigit():
        return None
    return int(number)


def align_rendered(source: str, rendered: str, window: int = 64) -> list[int]:
    """For each character of ``rendered``, the index in ``source`` it shows, or -1.

    Rendered Markdown is the source minus its markup (``*``, backticks, ``#``, list
    markers), with whitespace reflowed and the copy links added; everything else
    keeps its order. A forward scan that looks a short way ahead for each rendered
    character recovers that mapping, so the rendered answer can keep its token
    colours. Copy links (a line that is just the link's label) and whitespace the
    source lacks map to -1.
    """
    mapping = [-1] * len(rendered)
    skip_until = -1
    links = iter(_copy_link_lines(rendered))
    link = next(links, -1)
    position = 0
    for index, character in enumerate(rendered):
        if index == link:
            skip_until = link + len(COPY_LINK_LABEL)
            link = next(links, -1)
        if index < skip_until:
            continue
        if character.isspace():
            if position < len(source) and source[position].isspace():
                mapping[index] = position
                position += 1
            continue
        found = source.find(character, position, position + window)
        if found >= 0:
            mapping[index] = found
            position = found + 1
    return mapping


def _copy_link_lines(rendered: str) -> list[int]:
    """Where each copy link starts: a line of the rendered text that is just its label.

    A whole line, so an answer that itself says "Copy code" in a sentence keeps its
    colours there.
    """
    starts = []
    start = rendered.find(COPY_LINK_LABEL)
    while start >= 0:
        end = start + len(COPY_LINK_LABEL)
        if (start == 0 or rendered[start - 1] == "\n") and (
            end == len(rendered) or rendered[end] == "\n"
        ):
            starts.append(start)
        start = rendered.find(COPY_LINK_LABEL, end)
    return starts


def soft_breaks(source: str, rendered: str, mapping: Sequence[int]) -> list[int]:
    """Indices of the spaces in ``rendered`` that stand for a single newline of ``source``.

    CommonMark joins a paragraph's lines with a space (a "soft break"), so a poem or
    an address written one line at a time becomes one run-on line. Chat apps
    (ChatGPT, LM Studio, Jan) keep such newlines as line breaks, and so do we: the
    caller turns these spaces into line breaks in the rendered document. Found on
    the rendered text, not by rewriting the Markdown, so Qt still parses lists,
    headings, tables and code exactly as written; a code block's newlines are
    separate lines already, never spaces. ``mapping`` is ``align_rendered``'s.
    """
    breaks = []
    for index in range(1, len(rendered) - 1):
        if rendered[index] != " ":
            continue
        before, after = mapping[index - 1], mapping[index + 1]
        if (
            before >= 0
            and after > before
            and not rendered[index - 1].isspace()
            and not rendered[index + 1].isspace()
            and "\n" in source[before + 1 : after]
        ):
            breaks.append(index)
    return breaks
