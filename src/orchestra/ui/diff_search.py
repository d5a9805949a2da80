"""Searching a diff: the matches of a query in every file's lines, their highlighting, and the search bar.

A query in lower case matches either case; one with a capital letter matches exactly (as in less and
vim's smartcase). Matches are found in the text as drawn (tabs expanded), file headers included, so
a path can be searched for too.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Input, Static

from orchestra.core.git.diffparse import DiffLine
from orchestra.ui.highlight import clean

__all__ = ["Match", "SearchBar", "find_matches", "mark_matches"]


@dataclass(frozen=True, slots=True)
class Match:
    """One match: diff line `line`, cells start to end of its drawn code (of its header text for a file)."""

    line: int
    start: int
    end: int


def find_matches(lines: tuple[DiffLine, ...], query: str) -> list[Match]:
    """Every match of query in the lines, in order; none for an empty query."""
    if not query:
        return []
    exact = query != query.lower()
    needle = query if exact else query.lower()
    found: list[Match] = []
    for index, line in enumerate(lines):
        text = clean(f" {line.text}" if line.kind == "file" else line.text)  # headers are drawn after a space
        if not exact:
            text = text.lower()
        start = text.find(needle)
        while start >= 0:
            found.append(Match(index, start, start + len(needle)))
            start = text.find(needle, start + max(1, len(needle)))
    return found


def mark_matches(body: Strip, spans: list[tuple[int, int, bool]], match: Style, current: Style) -> Strip:
    """body with the cells of each (start, end, is_current) span drawn in the match (or current match) style."""
    length = body.cell_length
    cuts = sorted({cut for start, end, _ in spans for cut in (start, end) if 0 < cut < length} | {length})
    styles = {start: current if is_current else match for start, _end, is_current in spans}
    out: list[Segment] = []
    offset = 0
    for piece in body.divide(cuts):
        style = styles.get(offset)
        out.extend(Segment.apply_style(list(piece), post_style=style) if style else piece)
        offset += piece.cell_length
    return Strip(out, length)


class SearchBar(Horizontal):
    """A one-line bar under the diff: the query, and which match the cursor is on of how many."""

    DEFAULT_CSS = """
    SearchBar { height: 1; display: none; background: $panel; }
    SearchBar.-open { display: block; }
    SearchBar > #search-label { width: auto; padding: 0 1; color: $text-muted; }
    SearchBar > Input { width: 1fr; height: 1; border: none; padding: 0; background: $panel; }
    SearchBar > #search-count { width: auto; padding: 0 1; color: $text-accent; }
    """

    class Submitted(Message):
        """Enter was pressed in the bar: search for query."""

        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def compose(self) -> ComposeResult:
        yield Static("/", id="search-label")
        yield Input(placeholder="search the diff: enter finds, n and N move, esc closes", id="search-input")
        yield Static("", id="search-count")

    @property
    def is_open(self) -> bool:
        """Whether the bar shows."""
        return self.has_class("-open")

    def open(self) -> None:
        """Show the bar and put the cursor in its input, its last query selected."""
        self.add_class("-open")
        field = self.query_one(Input)
        field.focus()
        field.select_all()

    def close(self) -> None:
        """Hide the bar."""
        self.remove_class("-open")

    def show_count(self, current: int | None, total: int) -> None:
        """"3 of 17", "17 matches" before the first jump, or "no matches"."""
        if total == 0:
            text = "no matches"
        elif current is None:
            text = f"{total} match{'es' if total != 1 else ''}"
        else:
            text = f"{current + 1} of {total}"
        self.query_one("#search-count", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(event.value))
