"""The side-by-side layout of a diff: old lines on the left, new lines on the right, one row for both.

Within a block of changes the n-th removed line sits beside the n-th added line; what one side has
more of faces a blank. Context lines show on both sides; file headers, hunk headers and meta lines
span the whole width. Each row has one diff line standing for it (its new side when it has one), so
findings are placed under their lines exactly as in the unified view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from orchestra.core.git.diffparse import DiffLine, FileDiff
from orchestra.ui.diff_lines import MARKERS

__all__ = ["FULL_WIDTH", "SplitLayout", "side_by_side", "split_strip"]

FULL_WIDTH = frozenset({"file", "hunk", "meta"})  # kinds shown across both sides
SEPARATOR = "│"


@dataclass(frozen=True, slots=True)
class SplitLayout:
    """Rows of the side-by-side view as (old side, new side) indexes into the diff's lines (None: blank)."""

    pairs: tuple[tuple[int | None, int | None], ...]
    lines: tuple[DiffLine, ...]  # the line standing for each row: where findings and comments go
    files: tuple[FileDiff, ...]  # first_line counted in rows
    row_of_line: tuple[int, ...]  # diff line index → its row


def side_by_side(lines: tuple[DiffLine, ...], files: tuple[FileDiff, ...]) -> SplitLayout:
    """Pair each block's removed lines with its added lines, in order."""
    pairs: list[tuple[int | None, int | None]] = []
    row_of = [0] * len(lines)
    removed: list[int] = []
    added: list[int] = []

    def flush() -> None:
        for k in range(max(len(removed), len(added))):
            pair = (removed[k] if k < len(removed) else None, added[k] if k < len(added) else None)
            for index in pair:
                if index is not None:
                    row_of[index] = len(pairs)
            pairs.append(pair)
        removed.clear()
        added.clear()

    for index, line in enumerate(lines):
        if line.kind == "del":
            if added:  # a removal after additions starts a new block
                flush()
            removed.append(index)
        elif line.kind == "add":
            added.append(index)
        else:
            flush()
            row_of[index] = len(pairs)
            pairs.append((index, index))
    flush()
    standing = tuple(lines[new if new is not None else old] for old, new in pairs)
    moved = tuple(replace(file, first_line=row_of[file.first_line]) for file in files)
    return SplitLayout(tuple(pairs), standing, moved, tuple(row_of))


def split_strip(lines: tuple[DiffLine, ...], pair: tuple[int | None, int | None], bodies: tuple[Strip | None, ...],
                width: int, number_width: int, scroll_x: int, styles: dict[str, Style]) -> Strip:
    """One row of two sides: each its line number, marker and the code scrolled by scroll_x; a bar between."""
    left_width = (width - 1) // 2
    right_width = width - 1 - left_width
    old, new = pair
    left = _side(lines[old] if old is not None else None, "old", bodies[0], left_width, number_width, scroll_x,
                 styles)
    right = _side(lines[new] if new is not None else None, "new", bodies[1], right_width, number_width, scroll_x,
                  styles)
    return Strip.join([left, Strip([Segment(SEPARATOR, styles["gutter"])], 1), right])


def _side(line: DiffLine | None, side: str, body: Strip | None, width: int, number_width: int, scroll_x: int,
          styles: dict[str, Style]) -> Strip:
    if line is None or body is None:
        return Strip.blank(width, styles["ctx"])
    base = styles[line.kind]
    number = line.old_no if side == "old" else line.new_no
    role = {"add": "added-marker", "del": "removed-marker"}.get(line.kind, "gutter")
    gutter = Strip([Segment(f"{'' if number is None else number:>{number_width}} ", base + styles["gutter"]),
                    Segment(f"{MARKERS.get(line.kind, ' ')} ", base + styles[role])], number_width + 3)
    code_width = max(0, width - gutter.cell_length)
    return Strip.join([gutter, body.crop_extend(scroll_x, scroll_x + code_width, base)]).crop_extend(0, width, base)
