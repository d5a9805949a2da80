"""A virtualised, syntax-highlighted unified diff viewer built on Textual's Line API.

Only the lines inside the viewport are ever rendered: `render_line` builds a
`Strip` for one visible row on demand, highlighting its code with Pygments the
first time it is seen.  Colours come from component classes in DEFAULT_CSS, so
they follow the app theme (and Textual's NO_COLOR / 16-colour downgrading).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.token import Comment, Keyword, Name, Number, Operator, String, _TokenType
from pygments.util import ClassNotFound
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orchestra.core.git.diffparse import DiffLine, FileDiff, ParsedDiff

__all__ = ["DiffView"]

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_TAB_SIZE = 4
_KIND_CLASSES = {
    "add": "diff-view--added",
    "del": "diff-view--removed",
    "hunk": "diff-view--hunk",
    "file": "diff-view--file",
    "meta": "diff-view--meta",
}
_MARKERS = {"add": "+", "del": "-", "ctx": " "}
_ROLES = {
    Keyword: "keyword",
    Operator.Word: "keyword",
    String: "string",
    Comment: "comment",
    Name.Function: "function",
    Name.Class: "function",
    Name.Decorator: "function",
    Number: "number",
}
_FOREGROUND_CLASSES = ("gutter", "added-marker", "removed-marker", *sorted(set(_ROLES.values())))

Spans = tuple[tuple[str, str | None], ...]


def _clean(text: str) -> str:
    """Expand tabs and replace control characters so cell widths are exact."""
    return _CONTROL.sub("\ufffd", text.expandtabs(_TAB_SIZE))


@lru_cache(maxsize=512)
def _lexer_for(path: str) -> Lexer | None:
    """Pygments lexer chosen by file name, or None for plain text."""
    try:
        return get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=None)
def _role_of(token: _TokenType) -> str | None:
    """Palette role for a Pygments token type (walking up to its parents)."""
    while token:
        if token in _ROLES:
            return _ROLES[token]
        token = token.parent
    return None


@lru_cache(maxsize=4096)
def _highlight(text: str, lexer: Lexer | None) -> Spans:
    """Split one cleaned line into (text, role) spans.

    Lines are lexed on their own, so constructs spanning lines (docstrings,
    block comments) are only approximated; that is the price of laziness.
    """
    if lexer is None or not text.strip():
        return ((text, None),)
    spans: list[tuple[str, str | None]] = []
    for token, value in lexer.get_tokens(text):
        role = _role_of(token)
        if spans and spans[-1][1] == role:
            spans[-1] = (spans[-1][0] + value, role)
        else:
            spans.append((value, role))
    if spans and spans[-1][0].endswith("\n"):
        spans[-1] = (spans[-1][0][:-1], spans[-1][1])
    if "".join(value for value, _ in spans) != text:
        return ((text, None),)
    return tuple(span for span in spans if span[0])


class DiffView(ScrollView, can_focus=True):
    """Scrollable view of a ParsedDiff: line-number gutter, +/- marker, highlighted code.

    The gutter and file headers stay put when scrolling horizontally; only the
    code scrolls.  Rendered strips are cached per line index (LRU-bounded) and
    dropped whenever styles change, e.g. on a theme switch.
    """

    ALLOW_SELECT = False

    BINDINGS = [
        Binding("up,k", "line_up", "Line up", show=False),
        Binding("down,j", "line_down", "Line down", show=False),
        Binding("left,h", "column_left", "Scroll left", show=False),
        Binding("right,l", "column_right", "Scroll right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
        Binding(
            "]", "next_file", "Next file", id="diff.next_file",
            tooltip="Jump to the next changed file",
        ),
        Binding(
            "[", "prev_file", "Previous file", id="diff.prev_file",
            tooltip="Jump to the previous changed file",
        ),
    ]

    COMPONENT_CLASSES = {
        *_KIND_CLASSES.values(),
        *(f"diff-view--{name}" for name in _FOREGROUND_CLASSES),
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
        self._number_width = 3
        self._cache: LRUCache[int, tuple[Strip, Strip]] = LRUCache(2048)
        self._palette_cache: dict[str, Style] | None = None
        self._top_path: str | None = None

    # Public API

    def set_diff(self, parsed: ParsedDiff) -> None:
        """Replace the contents with `parsed` and scroll back to the top."""
        self._lines, self._files = parsed.lines, parsed.files
        self._starts = [file.first_line for file in parsed.files]
        self._cache.clear()
        self._number_width, code_width = self._measure(parsed.lines)
        self.virtual_size = Size(self._gutter_width + code_width, len(parsed.lines))
        self.scroll_to(0, 0, animate=False, force=True)
        self.refresh()
        self._update_current_file()

    def scroll_to_file(self, path: str) -> None:
        """Scroll so that the header line of the file `path` (new or old name) is at the top."""
        for file in self._files:
            if path in (file.path, file.old_path):
                self.scroll_to(y=file.first_line, animate=False)
                return

    def current_file(self) -> str | None:
        """Path of the file whose line is at the top of the viewport."""
        top = self.scroll_offset.y
        return self._lines[top].path if 0 <= top < len(self._lines) else None

    # Actions

    def action_line_up(self) -> None:
        """Scroll up one line."""
        self.scroll_to(y=self.scroll_y - 1, animate=False)

    def action_line_down(self) -> None:
        """Scroll down one line."""
        self.scroll_to(y=self.scroll_y + 1, animate=False)

    def action_column_left(self) -> None:
        """Scroll left one column."""
        self.scroll_to(x=self.scroll_x - 1, animate=False)

    def action_column_right(self) -> None:
        """Scroll right one column."""
        self.scroll_to(x=self.scroll_x + 1, animate=False)

    def action_page_up(self) -> None:
        """Scroll up one page."""
        self.scroll_to(y=self.scroll_y - self._page_height, animate=False)

    def action_page_down(self) -> None:
        """Scroll down one page."""
        self.scroll_to(y=self.scroll_y + self._page_height, animate=False)

    def action_scroll_home(self) -> None:
        """Scroll to the first line."""
        self.scroll_to(y=0, animate=False)

    def action_scroll_end(self) -> None:
        """Scroll to the last line."""
        self.scroll_to(y=self.max_scroll_y, animate=False)

    def action_next_file(self) -> None:
        """Put the next file's header at the top."""
        index = bisect_right(self._starts, self.scroll_offset.y)
        if index < len(self._starts):
            self.scroll_to(y=self._starts[index], animate=False)

    def action_prev_file(self) -> None:
        """Put the previous file's header at the top (the current one's if mid-file)."""
        index = bisect_left(self._starts, self.scroll_offset.y) - 1
        if index >= 0:
            self.scroll_to(y=self._starts[index], animate=False)

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

    def render_line(self, y: int) -> Strip:
        """Render viewport row `y`; the gutter is fixed, the code scrolls horizontally."""
        scroll_x, scroll_y = self.scroll_offset
        index, width = scroll_y + y, self.size.width
        if not 0 <= index < len(self._lines):
            return Strip.blank(width, self.rich_style)
        kind = self._lines[index].kind
        style = self._palette()[kind]
        gutter, body = self._strips(index)
        if kind == "file":
            return body.crop_extend(0, width, style)
        code_width = max(0, width - gutter.cell_length)
        strip = Strip.join([gutter, body.crop_extend(scroll_x, scroll_x + code_width, style)])
        return strip if strip.cell_length == width else strip.crop_extend(0, width, style)

    # Internals

    @property
    def _gutter_width(self) -> int:
        """Cells taken by both line numbers, their spaces, the marker and its space."""
        return 2 * self._number_width + 4

    @property
    def _page_height(self) -> int:
        """Lines scrolled by one page."""
        return max(1, self.scrollable_content_region.height)

    @staticmethod
    def _measure(lines: tuple[DiffLine, ...]) -> tuple[int, int]:
        """Digits of the largest line number (at least 3) and the widest code line."""
        largest = widest = 0
        for line in lines:
            if line.kind == "file":
                continue
            largest = max(largest, line.old_no or 0, line.new_no or 0)
            text = line.text
            width = len(text) if text.isascii() and "\t" not in text else cell_len(_clean(text))
            widest = max(widest, width)
        return max(3, len(str(largest))), widest

    def _update_current_file(self) -> None:
        """Post FileScrolled if the file at the top differs from last time."""
        path = self.current_file()
        if path != self._top_path:
            self._top_path = path
            self.post_message(self.FileScrolled(self, path))

    def _palette(self) -> dict[str, Style]:
        """Rich styles for line kinds and foreground roles, resolved from the CSS once."""
        if self._palette_cache is None:
            styles = {"ctx": self.rich_style}
            for kind, name in _KIND_CLASSES.items():
                styles[kind] = self.get_component_rich_style(name)
            for role in _FOREGROUND_CLASSES:
                full = self.get_component_rich_style(f"diff-view--{role}")
                styles[role] = Style(color=full.color, bold=full.bold, italic=full.italic)
            self._palette_cache = styles
        return self._palette_cache

    def _strips(self, index: int) -> tuple[Strip, Strip]:
        """Cached (gutter, uncropped body) strips for line `index`."""
        cached = self._cache.get(index)
        if cached is None:
            line = self._lines[index]
            if line.kind == "file":
                cached = (Strip([]), self._header_strip(index, line))
            else:
                cached = (self._gutter_strip(line), self._body_strip(line))
            self._cache[index] = cached
        return cached

    def _header_strip(self, index: int, line: DiffLine) -> Strip:
        """The bold file header: name, status and +/- counts."""
        style = self._palette()["file"]
        position = bisect_left(self._starts, index)
        file = self._files[position] if position < len(self._starts) else None
        summary = f"  {file.status}  +{file.added} -{file.removed}" if file else ""
        text = _clean(f" {line.text}{summary} ")
        return Strip([Segment(text, style)], cell_len(text))

    def _gutter_strip(self, line: DiffLine) -> Strip:
        """Old and new line numbers, right-aligned and muted, then the +/- marker."""
        styles, width = self._palette(), self._number_width
        base = styles[line.kind]
        old = "" if line.old_no is None else str(line.old_no)
        new = "" if line.new_no is None else str(line.new_no)
        marker = _MARKERS.get(line.kind, " ")
        role = {"add": "added-marker", "del": "removed-marker"}.get(line.kind, "gutter")
        segments = [
            Segment(f"{old:>{width}} {new:>{width}} ", base + styles["gutter"]),
            Segment(f"{marker} ", base + styles[role]),
        ]
        return Strip(segments, self._gutter_width)

    def _body_strip(self, line: DiffLine) -> Strip:
        """The line's text; code lines are syntax-highlighted, hunk/meta lines are not."""
        styles = self._palette()
        base = styles[line.kind]
        text = _clean(line.text)
        if line.kind not in _MARKERS:
            return Strip([Segment(text, base)], cell_len(text))
        spans = _highlight(text, _lexer_for(line.path))
        segments = [
            Segment(value, base + styles[role] if role else base) for value, role in spans
        ]
        return Strip(segments, cell_len(text))
