"""The strips of one diff line: a file's header, the gutter (line numbers and +/- marker), the highlighted code."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from orchestra.core.git.diffparse import DiffLine, FileDiff
from orchestra.ui.highlight import clean, highlight, lexer_for

__all__ = ["body_strip", "gutter_strip", "header_strip", "measure"]

MARKERS = {"add": "+", "del": "-", "ctx": " "}


def measure(lines: tuple[DiffLine, ...]) -> tuple[int, int]:
    """Digits of the largest line number (at least 3) and the widest code line."""
    texts = [line.text for line in lines if line.kind != "file"]
    largest = max((number for line in lines for number in (line.old_no, line.new_no) if number), default=0)
    widest = max(map(len, texts), default=0)
    special = [text for text in texts if "\t" in text or not text.isascii()]
    widest = max([widest, *(cell_len(clean(text)) for text in special)])
    return max(3, len(str(largest))), widest


def header_strip(line: DiffLine, file: FileDiff | None, styles: dict[str, Style]) -> Strip:
    """The bold file header: name, status and +/- counts."""
    summary = f"  {file.status}  +{file.added} -{file.removed}" if file else ""
    text = clean(f" {line.text}{summary} ")
    return Strip([Segment(text, styles["file"])], cell_len(text))


def gutter_strip(line: DiffLine, number_width: int, styles: dict[str, Style]) -> Strip:
    """Old and new line numbers, right-aligned and muted, then the +/- marker."""
    base = styles[line.kind]
    old = "" if line.old_no is None else str(line.old_no)
    new = "" if line.new_no is None else str(line.new_no)
    role = {"add": "added-marker", "del": "removed-marker"}.get(line.kind, "gutter")
    segments = [
        Segment(f"{old:>{number_width}} {new:>{number_width}} ", base + styles["gutter"]),
        Segment(f"{MARKERS.get(line.kind, ' ')} ", base + styles[role]),
    ]
    return Strip(segments, 2 * number_width + 4)


def body_strip(line: DiffLine, styles: dict[str, Style]) -> Strip:
    """The line's text; code lines are syntax-highlighted, hunk/meta lines are not."""
    base = styles[line.kind]
    text = clean(line.text)
    if line.kind not in MARKERS:
        return Strip([Segment(text, base)], cell_len(text))
    spans = highlight(text, lexer_for(line.path))
    return Strip([Segment(value, base + styles[role] if role else base) for value, role in spans], cell_len(text))
