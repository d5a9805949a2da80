"""Which diff line, or which finding's note, each row of the diff view shows.

Findings are placed once, when the diff or the findings change. A finding on lines the diff shows
follows the last of those lines; one on lines of a changed file that the diff does not show, or on a
file as a whole, comes right after that file's header; one on the whole change, or on a file the
diff does not touch, comes first. Rows are plain ints in one list, so a 20,000-line diff with
hundreds of findings costs one list and a bisect per lookup.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from orchestra.core.base.findings import Finding
from orchestra.core.git.diffparse import DiffLine, FileDiff

__all__ = ["DiffRows", "Note"]

_TOP = -1  # the anchor of notes shown before the first file


@dataclass(frozen=True, slots=True)
class Note:
    """A finding placed in the view: after diff line `line` (-1: before the first file)."""

    finding: Finding
    line: int
    at_its_line: bool  # False: its lines are not in the diff, so it sits at the top of its file or the diff


class DiffRows:
    """The rows of a diff with its findings: a row >= 0 is a diff line's index, a row < 0 is ~note."""

    def __init__(self, lines: tuple[DiffLine, ...], files: tuple[FileDiff, ...], findings: Iterable[Finding]) -> None:
        self.lines = lines
        placed = _place(lines, files, findings)
        self.notes: list[Note] = [note for _anchor, group in placed for note in group]
        self.rows: list[int] = []
        self.note_rows: list[int] = []  # the row of each note, ascending
        self._anchors: list[int] = []   # line indexes after which notes are inserted, ascending
        self._inserted: list[int] = []  # how many notes come before the lines after each anchor
        start, count = 0, 0
        for anchor, group in placed:
            self.rows.extend(range(start, anchor + 1))
            start = anchor + 1
            for note in group:
                self.note_rows.append(len(self.rows))
                self.rows.append(~count)
                count += 1
            self._anchors.append(anchor)
            self._inserted.append(count)
        self.rows.extend(range(start, len(lines)))
        self.opened: Note | None = None  # the note whose details show, under it
        self.opened_row: int | None = None
        self.details: list[tuple[str, str]] = []  # (text, role) rows

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shown(self) -> int:
        """Rows in the view: every row, and the open note's details."""
        return len(self.rows) + len(self.details)

    def open(self, row: int, details: list[tuple[str, str]]) -> None:
        """Show details under the note on row (counted without details); they replace any shown before."""
        self.opened, self.opened_row, self.details = self.note_at(row), row, details

    def locate(self, view_row: int) -> tuple[int, int | None]:
        """(row counted without the details, index into the details or None) of a row of the view."""
        opened, extra = self.opened_row, len(self.details)
        if opened is None or view_row <= opened:
            return view_row, None
        if view_row <= opened + extra:
            return opened, view_row - opened - 1
        return view_row - extra, None

    def view_row(self, row: int) -> int:
        """The row of the view of a row counted without the details."""
        return row + len(self.details) if self.opened_row is not None and row > self.opened_row else row

    def line_index(self, row: int) -> int | None:
        """The index of the diff line on row, or of the line its note follows."""
        if not 0 <= row < len(self.rows):
            return None
        value = self.rows[row]
        return value if value >= 0 else max(0, self.notes[~value].line)

    def row_of_line(self, index: int) -> int:
        """The row showing diff line `index`."""
        position = bisect_left(self._anchors, index)
        return index + (self._inserted[position - 1] if position else 0)

    def note_at(self, row: int) -> Note | None:
        """The note shown on row, if it is a note's row."""
        value = self.rows[row] if 0 <= row < len(self.rows) else 0
        return self.notes[~value] if value < 0 else None

    def line_at(self, row: int) -> DiffLine | None:
        """The diff line on row; for a note's row, the line it follows (None at the top of the diff)."""
        if not 0 <= row < len(self.rows):
            return None
        value = self.rows[row]
        index = value if value >= 0 else self.notes[~value].line
        return self.lines[index] if index >= 0 else None

    def row_of_finding(self, finding_id: str) -> int | None:
        """The row of the note of a finding, by id."""
        for row in self.note_rows:
            if self.notes[~self.rows[row]].finding.id == finding_id:
                return row
        return None

    def next_note_row(self, row: int) -> int | None:
        """The first note's row after row."""
        position = bisect_right(self.note_rows, row)
        return self.note_rows[position] if position < len(self.note_rows) else None

    def previous_note_row(self, row: int) -> int | None:
        """The last note's row before row."""
        position = bisect_left(self.note_rows, row)
        return self.note_rows[position - 1] if position else None


def _place(lines: tuple[DiffLine, ...], files: tuple[FileDiff, ...],
           findings: Iterable[Finding]) -> list[tuple[int, list[Note]]]:
    """(anchor line, its notes) in line order; notes at one anchor keep the findings' order."""
    findings = list(findings)
    if not findings:
        return []
    headers = {}
    for file in files:
        headers.setdefault(file.path, file.first_line)
        if file.old_path:
            headers.setdefault(file.old_path, file.first_line)
    numbered = _new_side_lines(lines, files, {f.path for f in findings if f.path in headers})
    groups: dict[int, list[Note]] = {}
    for finding in findings:
        anchor, at_line = _anchor(finding, headers, numbered)
        groups.setdefault(anchor, []).append(Note(finding, anchor, at_line))
    return sorted(groups.items())


def _new_side_lines(lines: tuple[DiffLine, ...], files: tuple[FileDiff, ...],
                    paths: set[str]) -> dict[str, tuple[list[int], list[int]]]:
    """path → (new-side line numbers, their diff line indexes), for the files findings name."""
    numbered: dict[str, tuple[list[int], list[int]]] = {}
    ends = [file.first_line for file in files[1:]] + [len(lines)]
    for file, end in zip(files, ends):
        if file.path in paths:
            indexes = [i for i in range(file.first_line, end) if lines[i].new_no is not None]
            numbers = [lines[i].new_no for i in indexes]
            known = numbered.setdefault(file.path, ([], []))
            known[0].extend(numbers)
            known[1].extend(indexes)
    return numbered


def _anchor(finding: Finding, headers: dict[str, int],
            numbered: dict[str, tuple[list[int], list[int]]]) -> tuple[int, bool]:
    """The diff line a finding's note follows, and whether that is one of its own lines."""
    if finding.path is None or finding.path not in headers:
        return _TOP, False
    header = headers[finding.path]
    if finding.line_start is None:
        return header, False
    numbers, indexes = numbered.get(finding.path, ([], []))
    end = max(finding.line_start, finding.line_end or finding.line_start)
    position = bisect_right(numbers, end) - 1
    if position >= 0 and numbers[position] >= finding.line_start and indexes[position] > header:
        return indexes[position], True
    return header, False
