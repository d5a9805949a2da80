"""The rows a finding takes in the diff view: its one-line note, and its details while the cursor is on it.

A note reads, under the gutter, `▸✓ P1 reviewer · title · where`: the arrow turns down while its
details show, ✓ marks it selected to send back. The details (body, suggested replacement, place,
confidence, rule, what the keys do) are wrapped to the view's width once, when it opens.
"""

from __future__ import annotations

import textwrap

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from orchestra.ui.diff_rows import Note
from orchestra.ui.findings import COMMENT_MARK, SELECTED_MARK, is_comment, source_label
from orchestra.ui.highlight import clean

__all__ = ["NOTE_ROLES", "detail_lines", "detail_strip", "note_strip"]

NOTE_ROLES = ("note", "note-title", "note-source", "note-body", "note-meta", "suggestion", "selected",
              "p0", "p1", "p2", "p3", "you")
MAX_DETAIL_ROWS = 24


def _priority_role(note: Note) -> str:
    return "you" if is_comment(note.finding) else note.finding.priority.lower()


def where(note: Note) -> str:
    """Where the finding is when that is not the line above it."""
    finding = note.finding
    if note.at_its_line:
        return ""
    if finding.path is None:
        return " · whole change"
    if note.line < 0:
        return f" · {finding.place} (not in this diff)"
    if finding.line_start is None:
        return " · whole file"
    return f" · line {finding.place.rsplit(':', 1)[-1]} (not shown in the diff)"


def note_strip(note: Note, width: int, gutter: int, styles: dict[str, Style], *, selected: bool,
               expanded: bool) -> Strip:
    """The note's one row: arrow, selection mark and priority in the gutter, then who says what, where."""
    finding, base = note.finding, styles["note"]
    comment = is_comment(finding)
    segments = [
        Segment(" " * (gutter - 6) + ("▾" if expanded else "▸"), base + styles[_priority_role(note)]),
        Segment(SELECTED_MARK if selected else " ", base + styles["selected"]),
        Segment(" ", base),
        Segment(f"{COMMENT_MARK} " if comment else finding.priority, base + styles[_priority_role(note)]),
        Segment(" ", base),
        Segment(clean(source_label(finding)) + ": ", base + styles["note-source"]),
        Segment(clean(finding.title), base + styles["note-title"]),
        Segment(clean(where(note)), base + styles["note-source"]),
    ]
    return _fit(Strip(segments), width, base)


def detail_lines(note: Note, width: int, gutter: int) -> list[tuple[str, str]]:
    """The finding's details as (text, role) rows that fit width: body, suggestion, facts, key hints."""
    finding, room = note.finding, max(20, width - gutter - 1)
    rows: list[tuple[str, str]] = []
    body = finding.body.strip()
    if body and body != finding.title.strip():
        for paragraph in body.splitlines():
            rows.extend((line, "note-body") for line in textwrap.wrap(clean(paragraph), room) or [""])
    if finding.suggestion is not None:
        rows.append(("suggested replacement:", "note-meta"))
        for line in finding.suggestion.splitlines() or [""]:
            code = clean(line)  # cut, not wrapped: code keeps its spaces; "↪" starts each continuation
            rows.extend((("+ " if start == 0 else "↪ ") + code[start:start + room - 2], "suggestion")
                        for start in range(0, max(1, len(code)), max(1, room - 2)))
    facts = [finding.place, finding.source if not is_comment(finding) else "your comment"]
    if finding.confidence is not None:
        facts.append(f"confidence {finding.confidence:.0%}")
    if finding.rule:
        facts.append(f"rule {finding.rule}")
    facts.append("u removes it" if is_comment(finding) else "x selects it to send back with d")
    rows.extend((line, "note-meta") for line in textwrap.wrap(" · ".join(facts), room))
    if len(rows) > MAX_DETAIL_ROWS:
        rows = [*rows[:MAX_DETAIL_ROWS - 1], (f"… {len(rows) - MAX_DETAIL_ROWS + 1} more lines", "note-meta")]
    return rows


def detail_strip(note: Note, row: tuple[str, str], width: int, gutter: int, styles: dict[str, Style]) -> Strip:
    """One row of a finding's details, under its note, with a bar in the priority's colour."""
    text, role = row
    base = styles["note"]
    segments = [Segment(" " * (gutter - 6) + "│", base + styles[_priority_role(note)]),
                Segment(" " * 5, base), Segment(text, base + styles[role])]
    return _fit(Strip(segments), width, base)


def _fit(strip: Strip, width: int, style: Style) -> Strip:
    """Exactly width cells: padded, or cut with an ellipsis."""
    if strip.cell_length <= width:
        return strip.extend_cell_length(width, style)
    cut = strip.crop(0, max(0, width - 1))
    return Strip([*cut, Segment("…", style)], cut.cell_length + cell_len("…"))
