"""A virtualised, syntax-highlighted unified diff viewer with a line cursor and findings in line, on Textual's
Line API.

Only the rows inside the viewport are ever rendered: `render_line` builds a `Strip` for one visible
row on demand, highlighting its code with Pygments the first time it is seen. Findings are placed
once (`DiffRows`), each as one note row after its line; the note the cursor last rested on opens in
place to show its body and suggestion. Colours come from component classes in DEFAULT_CSS, so they
follow the app theme (and Textual's NO_COLOR / 16-colour downgrading).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from rich.segment import Segment
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
from orchestra.ui.diff_lines import body_strip, gutter_strip, header_strip, measure
from orchestra.ui.diff_notes import NOTE_ROLES, detail_lines, detail_strip, note_strip
from orchestra.ui.diff_rows import DiffRows
from orchestra.ui.highlight import ROLES, clean, highlight, lexer_for

__all__ = ["DiffView"]

# The names the tests and benchmarks know them by.
_highlight, _lexer_for, _clean = highlight, lexer_for, clean

_KIND_CLASSES = {
    "add": "diff-view--added",
    "del": "diff-view--removed",
    "hunk": "diff-view--hunk",
    "file": "diff-view--file",
    "meta": "diff-view--meta",
}
_FOREGROUND_CLASSES = ("gutter", "added-marker", "removed-marker", *ROLES)
_NOTE_CLASSES = NOTE_ROLES


class DiffView(ScrollView, can_focus=True):
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
    ]

    COMPONENT_CLASSES = {
        *_KIND_CLASSES.values(),
        *(f"diff-view--{name}" for name in (*_FOREGROUND_CLASSES, *_NOTE_CLASSES)),
        "diff-view--cursor",
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

    # Public API

    def set_diff(self, parsed: ParsedDiff, findings: Iterable[Finding] = ()) -> None:
        """Replace the contents with `parsed` and its findings, and scroll back to the top."""
        self._lines, self._files = parsed.lines, parsed.files
        self._starts = [file.first_line for file in parsed.files]
        self._cache.clear()
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
        """Wrap the open note's details to the new width (a cursor in them goes back to the note)."""
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
        return self._with_cursor(strip) if row == self.cursor else strip

    # Internals: rows, the cursor and the open note

    def _place(self, findings: Iterable[Finding]) -> None:
        self._rows = DiffRows(self._lines, self._files, findings)
        self._header_rows = [self._rows.row_of_line(start) for start in self._starts]

    def _open_at(self, row: int) -> None:
        """Show the details of the note on row (counted without details), wrapped to the view."""
        note = self._rows.note_at(row)
        width = self.scrollable_content_region.width or 80
        self._rows.open(row, detail_lines(note, width, self._gutter_width) if note else [])

    def _update_size(self) -> None:
        self.virtual_size = Size(self._gutter_width + self._code_width, self._rows.shown)

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
        """Post FileScrolled if the file at the top differs from last time."""
        path = self.current_file()
        if path != self._top_path:
            self._top_path = path
            self.post_message(self.FileScrolled(self, path))

    def _palette(self) -> dict[str, Style]:
        """Rich styles for line kinds, foreground roles and notes, resolved from the CSS once."""
        if self._palette_cache is None:
            styles = {"ctx": self.rich_style, "cursor": self.get_component_rich_style("diff-view--cursor")}
            for kind, name in _KIND_CLASSES.items():
                styles[kind] = self.get_component_rich_style(name)
            styles["note"] = self.get_component_rich_style("diff-view--note")
            for role in (*_FOREGROUND_CLASSES, *_NOTE_CLASSES[1:]):
                full = self.get_component_rich_style(f"diff-view--{role}")
                styles[role] = Style(color=full.color, bold=full.bold, italic=full.italic, reverse=full.reverse)
            self._palette_cache = styles
        return self._palette_cache

    def _row_strip(self, view_row: int, width: int) -> Strip:
        """One view row: a diff line, a note, or a line of the open note's details."""
        row, detail = self._rows.locate(view_row)
        gutter, styles = self._gutter_width, self._palette()
        if detail is not None and self._rows.opened is not None:
            return detail_strip(self._rows.opened, self._rows.details[detail], width, gutter, styles)
        value = self._rows.rows[row]
        if value < 0:
            note = self._rows.notes[~value]
            return note_strip(note, width, gutter, styles, selected=note.finding.id in self.selected,
                              expanded=note is self._rows.opened)
        return self._line_strip(value, width)

    def _line_strip(self, index: int, width: int) -> Strip:
        kind = self._lines[index].kind
        style = self._palette()[kind]
        gutter, body = self._strips(index)
        if kind == "file":
            return body.crop_extend(0, width, style)
        scroll_x = self.scroll_offset.x
        code_width = max(0, width - gutter.cell_length)
        strip = Strip.join([gutter, body.crop_extend(scroll_x, scroll_x + code_width, style)])
        return strip if strip.cell_length == width else strip.crop_extend(0, width, style)

    def _with_cursor(self, strip: Strip) -> Strip:
        """The cursor's row: its gutter drawn in the cursor style (reverse: visible without colour too)."""
        cursor = self._palette()["cursor"]
        head, *rest = strip.divide([self._gutter_width, strip.cell_length])
        marked = Strip(Segment.apply_style(list(head), post_style=Style(reverse=cursor.reverse, bold=cursor.bold)),
                       head.cell_length)
        return Strip.join([marked, *rest])

    def _strips(self, index: int) -> tuple[Strip, Strip]:
        """Cached (gutter, uncropped body) strips for line `index`."""
        cached = self._cache.get(index)
        if cached is None:
            line = self._lines[index]
            styles = self._palette()
            if line.kind == "file":
                position = bisect_left(self._starts, index)
                file = self._files[position] if position < len(self._starts) else None
                cached = (Strip([]), header_strip(line, file, styles))
            else:
                cached = (gutter_strip(line, self._number_width, styles), body_strip(line, styles))
            self._cache[index] = cached
        return cached
