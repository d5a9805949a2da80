"""A virtualised, syntax-highlighted diff viewer (unified, or side by side with `v`) with a line cursor, a
search (`/`) and findings in line, on Textual's Line API.

Only the rows inside the viewport are ever rendered: `render_line` builds a `Strip` for one visible
row on demand, highlighting its code with Pygments the first time it is seen. Findings are placed
once (`DiffRows`), each as one note row after its line; the note the cursor last rested on opens in
place to show its body and suggestion. Colours come from component classes in DEFAULT_CSS, so they
follow the app theme (and Textual's NO_COLOR / 16-colour downgrading). Side by side and the search
live in DiffModes (diff_modes.py), the drawing of rows in DiffDrawing (diff_drawing.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orchestra.core.base.findings import Finding
from orchestra.core.git.diffparse import DiffLine, FileDiff, ParsedDiff
from orchestra.ui.diff_drawing import FOREGROUND_CLASSES, KIND_CLASSES, NOTE_CLASSES, DiffDrawing
from orchestra.ui.diff_lines import measure
from orchestra.ui.diff_modes import SPLIT_MIN_WIDTH, DiffModes
from orchestra.ui.diff_notes import detail_lines
from orchestra.ui.diff_rows import DiffRows
from orchestra.ui.diff_search import Match
from orchestra.ui.diff_split import SplitLayout, side_by_side
from orchestra.ui.highlight import clean, highlight, lexer_for

__all__ = ["DiffView"]

# The names the tests and benchmarks know them by.
_highlight, _lexer_for, _clean = highlight, lexer_for, clean


class DiffView(DiffModes, DiffDrawing, ScrollView, can_focus=True):
    """Scrollable view of a ParsedDiff: line-number gutter, +/- marker, highlighted code, a line cursor, and
    the findings on its lines.

    The gutter, file headers and notes stay put when scrolling horizontally; only the code scrolls.
    Rendered code strips are cached per line (LRU-bounded) and dropped whenever styles change, e.g. on
    a theme switch.
    """

    ALLOW_SELECT = False

    BINDINGS = [
        Binding("}", "next_finding", "Next", id="diff.next_finding", group=Binding.Group("Finding"),
                tooltip="Move the cursor to the next finding or comment in the diff, and open it"),
        Binding("{", "prev_finding", "Previous", id="diff.prev_finding", group=Binding.Group("Finding"),
                tooltip="Move the cursor to the previous finding or comment in the diff, and open it"),
        Binding("up,k", "line_up", "Line up", show=False),
        Binding("down,j", "line_down", "Line down", show=False),
        Binding("left,h", "column_left", "Scroll left", show=False),
        Binding("right,l", "column_right", "Scroll right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
        Binding("]", "next_file", "Next file", id="diff.next_file", show=False,
                tooltip="Jump to the next changed file"),
        Binding("[", "prev_file", "Previous file", id="diff.prev_file", show=False,
                tooltip="Jump to the previous changed file"),
        Binding("v", "toggle_split", "Split", id="diff.split",
                tooltip=f"Show old and new side by side, or unified again (side by side needs {SPLIT_MIN_WIDTH} "
                        "columns)"),
        Binding("slash", "search", "Search", id="diff.search",
                tooltip="Search every file of the diff; enter finds, n and N move between matches, esc closes"),
        Binding("n", "next_match", "Next match", id="diff.next_match", show=False,
                tooltip="Move to the next match of the search"),
        Binding("N", "prev_match", "Previous match", id="diff.prev_match", show=False,
                tooltip="Move to the previous match of the search"),
    ]

    COMPONENT_CLASSES = {
        *KIND_CLASSES.values(),
        *(f"diff-view--{name}" for name in (*FOREGROUND_CLASSES, *NOTE_CLASSES)),
        "diff-view--cursor",
        "diff-view--match",
        "diff-view--match-current",
    }

    DEFAULT_CSS = """
    DiffView {
        background: $surface;
        color: $foreground;
    }
    DiffView > .diff-view--added { background: $success 15%; }
    DiffView > .diff-view--removed { background: $error 15%; }
    DiffView > .diff-view--added-marker { color: $text-success; text-style: bold; }
    DiffView > .diff-view--removed-marker { color: $text-error; text-style: bold; }
    DiffView > .diff-view--hunk { background: $primary 8%; color: $text-muted; }
    DiffView > .diff-view--file { background: $primary 20%; color: $text-primary; text-style: bold; }
    DiffView > .diff-view--meta { color: $text-muted; text-style: italic; }
    DiffView > .diff-view--gutter { color: $foreground-muted; }
    DiffView > .diff-view--keyword { color: $text-primary; }
    DiffView > .diff-view--string { color: $text-success; }
    DiffView > .diff-view--comment { color: $text-muted; text-style: italic; }
    DiffView > .diff-view--function { color: $text-accent; }
    DiffView > .diff-view--number { color: $text-warning; }
    DiffView > .diff-view--cursor { text-style: reverse bold; }
    DiffView > .diff-view--match { background: $warning 45%; text-style: underline; }
    DiffView > .diff-view--match-current { background: $accent; color: $text; text-style: bold underline; }
    DiffView > .diff-view--note { background: $panel; color: $foreground; }
    DiffView > .diff-view--note-title { text-style: bold; }
    DiffView > .diff-view--note-source { color: $text-muted; }
    DiffView > .diff-view--note-body { color: $foreground; }
    DiffView > .diff-view--note-meta { color: $text-muted; text-style: italic; }
    DiffView > .diff-view--suggestion { color: $text-success; }
    DiffView > .diff-view--selected { color: $text-accent; text-style: bold; }
    DiffView > .diff-view--p0 { color: $text-error; text-style: bold reverse; }
    DiffView > .diff-view--p1 { color: $text-error; text-style: bold; }
    DiffView > .diff-view--p2 { color: $text-warning; text-style: bold; }
    DiffView > .diff-view--p3 { color: $text-muted; }
    DiffView > .diff-view--you { color: $text-accent; text-style: bold; }
    """

    class FileScrolled(Message):
        """Posted when the file shown at the top of the viewport changes."""

        def __init__(self, diff_view: DiffView, path: str | None) -> None:
            super().__init__()
            self.diff_view = diff_view
            self.path = path

        @property
        def control(self) -> DiffView:
            """The DiffView that posted the message."""
            return self.diff_view

    class SearchStarted(Message):
        """`/` was pressed: the host shows a search bar and calls search() with its query."""

    class MatchChanged(Message):
        """The search moved to another match (current is None before the first jump) or found none."""

        def __init__(self, current: int | None, total: int) -> None:
            super().__init__()
            self.current, self.total = current, total

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._lines: tuple[DiffLine, ...] = ()
        self._files: tuple[FileDiff, ...] = ()
        self._starts: list[int] = []
        self._rows = DiffRows((), (), ())
        self._header_rows: list[int] = []
        self._number_width = 3
        self._cache: LRUCache[int, tuple[Strip, Strip]] = LRUCache(2048)
        self._palette_cache: dict[str, Style] | None = None
        self._top_path: str | None = None
        self.cursor = 0  # the view row the cursor is on
        self.selected: frozenset[str] = frozenset()  # ids of the findings marked to send back
        self._code_width = 0
        self._findings: tuple[Finding, ...] = ()
        self.split_wanted = False  # v asked for side by side; shown only when the terminal is wide enough
        self._layout: SplitLayout | None = None  # built the first time side by side shows
        self._split = False  # side by side is what shows
        self._matches: list[Match] = []
        self._match_index: int | None = None
        self._match_spans: dict[int, list[tuple[int, int, int]]] = {}  # line → (start, end, match index)

    # Public API

    def set_diff(self, parsed: ParsedDiff, findings: Iterable[Finding] = ()) -> None:
        """Replace the contents with `parsed` and its findings, and scroll back to the top."""
        self._lines, self._files = parsed.lines, parsed.files
        self._starts = [file.first_line for file in parsed.files]
        self._split = self._split_fits()
        self._layout = side_by_side(parsed.lines, parsed.files) if self._split else None
        self._set_matches([])
        self._number_width, self._code_width = measure(parsed.lines)
        self._place(findings)
        self._update_size()
        self.scroll_to(0, 0, animate=False, force=True)
        self.cursor = 0  # a note on the first row opens when the cursor moves to it, not before
        self.refresh()
        self._update_current_file()

    def set_findings(self, findings: Iterable[Finding]) -> None:
        """Place a new set of findings, keeping the cursor on the same line or finding, and where it is shown."""
        before = self.cursor - self.scroll_offset.y
        note, line = self.finding_at_cursor(), self._rows.line_index(self._rows.locate(self.cursor)[0])
        opened = self._rows.opened.finding.id if self._rows.opened else None
        self._place(findings)
        if opened is not None and (row := self._rows.row_of_finding(opened)) is not None:
            self._open_at(row)
        row = self._rows.row_of_finding(note.id) if note else None
        if row is None:
            row = self._rows.row_of_line(line) if line is not None else 0
        self._update_size()
        self.cursor = min(self._rows.view_row(row), max(0, self._rows.shown - 1))
        self.scroll_to(y=self.cursor - before, animate=False)
        self.refresh()

    def set_selected(self, finding_ids: Iterable[str]) -> None:
        """Mark these findings as selected (✓)."""
        self.selected = frozenset(finding_ids)
        self.refresh()

    def scroll_to_file(self, path: str) -> None:
        """Scroll so that the header line of the file `path` (new or old name) is at the top."""
        for file in self._files:
            if path in (file.path, file.old_path):
                row = self._rows.view_row(self._rows.row_of_line(file.first_line))
                self._set_cursor(row, follow=False)
                self.scroll_to(y=row, animate=False)
                return

    def jump_to_finding(self, finding_id: str) -> bool:
        """Put the cursor on a finding's note and open it; False when the diff does not show it."""
        row = self._rows.row_of_finding(finding_id)
        if row is None:
            return False
        self._reveal(self._set_cursor(self._rows.view_row(row), follow=False))
        return True

    def finding_at_cursor(self) -> Finding | None:
        """The finding whose note (or details) the cursor is on."""
        row, detail = self._rows.locate(self.cursor)
        if detail is not None:
            return self._rows.opened.finding if self._rows.opened else None
        note = self._rows.note_at(row)
        return note.finding if note else None

    def line_at_cursor(self) -> DiffLine | None:
        """The diff line under the cursor; on a note, the line the note follows."""
        row, _ = self._rows.locate(self.cursor)
        return self._rows.line_at(row)

    def current_file(self) -> str | None:
        """Path of the file whose line is at the top of the viewport."""
        row, _ = self._rows.locate(self.scroll_offset.y)
        line = self._rows.line_at(row)
        if line is not None:
            return line.path
        note = self._rows.note_at(row)
        return note.finding.path if note else None

    @property
    def finding_count(self) -> int:
        """How many findings the view places."""
        return len(self._rows.notes)

    # Actions

    def action_line_up(self) -> None:
        """Move the cursor up one row."""
        self._set_cursor(self._cursor_in_view() - 1)

    def action_line_down(self) -> None:
        """Move the cursor down one row."""
        self._set_cursor(self._cursor_in_view() + 1)

    def action_column_left(self) -> None:
        """Scroll left one column."""
        self.scroll_to(x=self.scroll_x - 1, animate=False)

    def action_column_right(self) -> None:
        """Scroll right one column."""
        self.scroll_to(x=self.scroll_x + 1, animate=False)

    def action_page_up(self) -> None:
        """Scroll up one page; the cursor moves with it."""
        self._page(-self._page_height)

    def action_page_down(self) -> None:
        """Scroll down one page; the cursor moves with it."""
        self._page(self._page_height)

    def action_scroll_home(self) -> None:
        """The first row."""
        self._set_cursor(0)
        self.scroll_to(y=0, animate=False)

    def action_scroll_end(self) -> None:
        """The last row."""
        self._set_cursor(self._rows.shown - 1)
        self.scroll_to(y=self.max_scroll_y, animate=False)

    def action_next_file(self) -> None:
        """Put the next file's header at the top."""
        rows = [self._rows.view_row(row) for row in self._header_rows]
        index = bisect_right(rows, self.cursor)
        if index < len(rows):
            self._set_cursor(rows[index], follow=False)
            self.scroll_to(y=rows[index], animate=False)

    def action_prev_file(self) -> None:
        """Put the previous file's header at the top (the current one's if mid-file)."""
        rows = [self._rows.view_row(row) for row in self._header_rows]
        index = bisect_left(rows, self.cursor) - 1
        if index >= 0:
            self._set_cursor(rows[index], follow=False)
            self.scroll_to(y=rows[index], animate=False)

    def action_next_finding(self) -> None:
        """The next finding's note, opened."""
        row, _ = self._rows.locate(self.cursor)
        target = self._rows.next_note_row(row)
        if target is None:
            self.notify("No more findings below." if self._rows.notes else "No findings in this diff.", timeout=3)
            return
        self._reveal(self._set_cursor(self._rows.view_row(target), follow=False))

    def action_prev_finding(self) -> None:
        """The previous finding's note (this one's, from its details), opened."""
        row, detail = self._rows.locate(self.cursor)
        target = row if detail is not None else self._rows.previous_note_row(row)
        if target is None:
            self.notify("No more findings above." if self._rows.notes else "No findings in this diff.", timeout=3)
            return
        self._reveal(self._set_cursor(self._rows.view_row(target), follow=False))

    # Textual hooks

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Refresh as ScrollView does, then report a change of the top file."""
        super().watch_scroll_y(old_value, new_value)
        self._update_current_file()

    def notify_style_update(self) -> None:
        """Drop cached styles and strips: the theme or CSS changed."""
        super().notify_style_update()
        self._palette_cache = None
        self._cache.clear()

    def on_resize(self) -> None:
        """Wrap the open note's details to the new width (a cursor in them goes back to the note); side by
        side falls back to unified on a narrow terminal, and comes back when it is wide again."""
        if self._split != self._split_fits():
            self._relayout()
        self._update_size()
        if self._rows.opened_row is not None:
            row, _ = self._rows.locate(self.cursor)
            self._open_at(self._rows.opened_row)
            self._update_size()
            self.cursor = self._rows.view_row(row)

    def on_click(self, event: Click) -> None:
        """Put the cursor on the clicked row."""
        self._set_cursor(self.scroll_offset.y + event.y, follow=False)

    def render_line(self, y: int) -> Strip:
        """Render viewport row `y`; the gutter is fixed, the code scrolls horizontally."""
        row = self.scroll_offset.y + y
        width = self.size.width
        if not 0 <= row < self._rows.shown:
            return Strip.blank(width, self.rich_style)
        strip = self._row_strip(row, width)
        return self._with_cursor(strip, row) if row == self.cursor else strip

    # Internals: rows, the cursor and the open note

    def _place(self, findings: Iterable[Finding]) -> None:
        self._findings = tuple(findings)
        lines, files = (self._layout.lines, self._layout.files) if self._split and self._layout else (
            self._lines, self._files)
        self._rows = DiffRows(lines, files, self._findings)
        self._header_rows = [self._rows.row_of_line(file.first_line) for file in files]

    def _open_at(self, row: int) -> None:
        """Show the details of the note on row (counted without details), wrapped to the view."""
        note = self._rows.note_at(row)
        width = self.scrollable_content_region.width or 80
        self._rows.open(row, detail_lines(note, width, self._gutter_width) if note else [])

    def _update_size(self) -> None:
        width = self._gutter_width + self._code_width
        if self._split:  # both sides scroll together, by as much as the code is wider than one side
            width = self.scrollable_content_region.width + max(0, self._code_width - self._code_room)
        self.virtual_size = Size(width, self._rows.shown)

    def _set_cursor(self, view_row: int, follow: bool = True) -> int:
        """Move the cursor to view_row (clamped); landing on a note opens it. Returns the cursor's row."""
        view_row = max(0, min(view_row, self._rows.shown - 1))
        row, detail = self._rows.locate(view_row)
        note = self._rows.note_at(row) if detail is None else None
        if note is not None and note is not self._rows.opened:
            shifted = self._rows.opened_row is not None and self._rows.opened_row < row
            hidden = len(self._rows.details)
            self._open_at(row)
            self._update_size()
            view_row = row
            if shifted:  # the closed details were above: keep the cursor where it was on screen
                self.scroll_to(y=self.scroll_offset.y - hidden, animate=False)
        self.cursor = view_row
        if follow:
            self._follow(len(self._rows.details) if note is not None else 0)
        self._update_current_file()
        self.refresh()
        return view_row

    def _cursor_in_view(self) -> int:
        """The cursor, brought back into the viewport if scrolling left it behind."""
        top = self.scroll_offset.y
        return max(top, min(self.cursor, top + self._page_height - 1))

    def _follow(self, below: int = 0) -> None:
        """Scroll just enough to show the cursor (and `below` rows under it)."""
        top, height = self.scroll_offset.y, self._page_height
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor + below >= top + height:
            self.scroll_to(y=min(self.cursor, self.cursor + below - height + 1), animate=False)

    def _reveal(self, view_row: int) -> None:
        """Scroll a note and its details into view, a little below the top when it was out of sight."""
        top, height, below = self.scroll_offset.y, self._page_height, len(self._rows.details)
        if view_row < top or view_row + below >= top + height:
            self.scroll_to(y=view_row - min(height // 4, max(0, height - 1 - below)), animate=False)

    def _page(self, delta: int) -> None:
        cursor = self._cursor_in_view()
        self.scroll_to(y=self.scroll_offset.y + delta, animate=False)
        self._set_cursor(cursor + delta)

    # Internals: drawing

    @property
    def _gutter_width(self) -> int:
        """Cells taken by both line numbers, their spaces, the marker and its space."""
        return 2 * self._number_width + 4

    @property
    def _page_height(self) -> int:
        """Lines scrolled by one page."""
        return max(1, self.scrollable_content_region.height)

    def _update_current_file(self) -> None:
        """Post FileScrolled if the file shown changed: the cursor's while it is on screen, else the top one's."""
        top = self.scroll_offset.y
        path = self.current_file()
        if top <= self.cursor < top + self._page_height:
            line, finding = self.line_at_cursor(), self.finding_at_cursor()
            path = line.path if line is not None else (finding.path if finding is not None else None) or path
        if path != self._top_path:
            self._top_path = path
            self.post_message(self.FileScrolled(self, path))
