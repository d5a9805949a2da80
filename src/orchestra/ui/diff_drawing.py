"""How the diff view draws a row: a diff line (unified or side by side), a note, or a line of a note's
details, in styles resolved once from the view's CSS.

A mixin of DiffView, apart so each file stays readable; the view's rows, cursor and caches are its state.
"""

from __future__ import annotations

from bisect import bisect_left

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from orchestra.ui.diff_lines import body_strip, gutter_strip, header_strip
from orchestra.ui.diff_notes import NOTE_ROLES, detail_strip, note_strip
from orchestra.ui.diff_search import mark_matches
from orchestra.ui.diff_split import FULL_WIDTH, split_strip
from orchestra.ui.highlight import ROLES

__all__ = ["FOREGROUND_CLASSES", "KIND_CLASSES", "NOTE_CLASSES", "DiffDrawing"]

KIND_CLASSES = {
    "add": "diff-view--added",
    "del": "diff-view--removed",
    "hunk": "diff-view--hunk",
    "file": "diff-view--file",
    "meta": "diff-view--meta",
}
FOREGROUND_CLASSES = ("gutter", "added-marker", "removed-marker", *ROLES)
NOTE_CLASSES = NOTE_ROLES


class DiffDrawing:
    """The strips of DiffView's rows."""

    def _palette(self) -> dict[str, Style]:
        """Rich styles for line kinds, foreground roles and notes, resolved from the CSS once."""
        if self._palette_cache is None:
            styles = {"ctx": self.rich_style, "cursor": self.get_component_rich_style("diff-view--cursor")}
            for kind, name in KIND_CLASSES.items():
                styles[kind] = self.get_component_rich_style(name)
            styles["note"] = self.get_component_rich_style("diff-view--note")
            for role in (*FOREGROUND_CLASSES, *NOTE_CLASSES[1:]):
                full = self.get_component_rich_style(f"diff-view--{role}")
                styles[role] = Style(color=full.color, bold=full.bold, italic=full.italic, reverse=full.reverse)
            # A match keeps its syntax colours (underlined: visible without colour too); the current one stands
            # out whole.
            match = self.get_component_rich_style("diff-view--match")
            styles["match"] = Style(bgcolor=match.bgcolor, underline=match.underline)
            styles["match-current"] = self.get_component_rich_style("diff-view--match-current")
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
        if self._split and self._layout is not None:
            pair = self._layout.pairs[index]
            old = pair[0]
            if old is None or self._lines[old].kind not in FULL_WIDTH:
                bodies = tuple(None if side is None else self._strips(side)[1] for side in pair)
                return split_strip(self._lines, pair, bodies, width, self._number_width, self.scroll_offset.x,
                                   self._palette())
            index = old
        kind = self._lines[index].kind
        style = self._palette()[kind]
        gutter, body = self._strips(index)
        if kind == "file":
            return body.crop_extend(0, width, style)
        scroll_x = self.scroll_offset.x
        code_width = max(0, width - gutter.cell_length)
        strip = Strip.join([gutter, body.crop_extend(scroll_x, scroll_x + code_width, style)])
        return strip if strip.cell_length == width else strip.crop_extend(0, width, style)

    def _with_cursor(self, strip: Strip, row: int) -> Strip:
        """The cursor's row: its gutter drawn in the cursor style (reverse: visible without colour too); on a
        file's header, the whole header, so ] and [ show where they landed."""
        cursor = self._palette()["cursor"]
        line = self._rows.line_at(self._rows.locate(row)[0])
        on_header = line is not None and line.kind == "file" and self._rows.note_at(self._rows.locate(row)[0]) is None
        cells = strip.cell_length if on_header else self._number_width + 3 if self._split else self._gutter_width
        head, *rest = strip.divide([cells, strip.cell_length])
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
            if index in self._match_spans:
                spans = [(start, end, number == self._match_index) for start, end, number in self._match_spans[index]]
                cached = (cached[0], mark_matches(cached[1], spans, styles["match"], styles["match-current"]))
            self._cache[index] = cached
        return cached
