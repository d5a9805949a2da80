"""The diff view's two extra ways of looking: side by side (v) and a search of every file (/, n, N).

A mixin of DiffView, apart so each file stays readable: it works on the view's rows, cursor and caches,
and posts the view's own messages (SearchStarted, MatchChanged). Its keys are bound in DiffView.
"""

from __future__ import annotations

from orchestra.ui.diff_search import Match, find_matches
from orchestra.ui.diff_split import side_by_side

__all__ = ["SPLIT_MIN_WIDTH", "DiffModes"]

SPLIT_MIN_WIDTH = 120  # terminal columns under which side by side falls back to unified: each side too narrow


class DiffModes:
    """Side by side and search, for DiffView."""

    @property
    def is_split(self) -> bool:
        """Whether old and new show side by side."""
        return self._split

    def search(self, query: str) -> int:
        """Highlight every match of query and move to the first at or after the cursor; how many there are."""
        self._set_matches(find_matches(self._lines, query))
        if self._matches:
            here = self._unified_index(self._rows.line_index(self._rows.locate(self.cursor)[0]) or 0)
            self._goto_match(next((i for i, m in enumerate(self._matches) if m.line >= here), 0))
        else:
            self.post_message(self.MatchChanged(None, 0))
        return len(self._matches)

    def clear_search(self) -> None:
        """Take the search's highlights away."""
        self._set_matches([])

    def action_toggle_split(self) -> None:
        """Side by side, or unified again; too narrow a terminal keeps unified, and says so."""
        self.split_wanted = not self.split_wanted
        if self.split_wanted and not self._split_fits():
            self.notify(f"Side by side needs a terminal of {SPLIT_MIN_WIDTH} columns (this one has "
                        f"{self.app.size.width}): the diff stays unified until it is wider.", timeout=5)
        self._relayout()

    def action_search(self) -> None:
        """Ask the host for the search bar."""
        self.post_message(self.SearchStarted())

    def action_next_match(self) -> None:
        """The next match, from the last back to the first."""
        self._goto_match(((self._match_index if self._match_index is not None else -1) + 1) % len(self._matches))

    def action_prev_match(self) -> None:
        """The previous match, from the first back to the last."""
        self._goto_match(((self._match_index if self._match_index is not None else 0) - 1) % len(self._matches))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """n and N belong to the search only while it has matches; otherwise the key means what it means
        elsewhere (n: new runs)."""
        if action in ("next_match", "prev_match"):
            return bool(self._matches)
        return True

    # Internals

    @property
    def _code_room(self) -> int:
        """Cells of code a row shows: beside the gutter, or on one side of side by side."""
        width = self.scrollable_content_region.width
        return (width - 1) // 2 - self._number_width - 3 if self._split else width - self._gutter_width

    def _split_fits(self) -> bool:
        return self.split_wanted and self.app.size.width >= SPLIT_MIN_WIDTH

    def _relayout(self) -> None:
        """Show unified or side by side as wanted, the cursor's line staying where it was on screen."""
        before = self.cursor - self.scroll_offset.y
        line = self._unified_index(self._rows.line_index(self._rows.locate(self.cursor)[0]) or 0)
        self._split = self._split_fits()
        if self._split and self._layout is None:
            self._layout = side_by_side(self._lines, self._files)
        self._place(self._findings)
        self._update_size()
        self.cursor = min(self._rows.row_of_line(self._view_index(line)), max(0, self._rows.shown - 1))
        self.scroll_to(y=self.cursor - before, animate=False)
        self.refresh()

    def _unified_index(self, index: int) -> int:
        """The diff line of a line of the rows shown (in side by side: its new side, else its old side)."""
        if not self._split or self._layout is None or not self._layout.pairs:
            return index
        old, new = self._layout.pairs[index]
        return new if new is not None else old or 0

    def _view_index(self, line: int) -> int:
        """The line of the rows shown that holds diff line `line`."""
        return self._layout.row_of_line[line] if self._split and self._layout and self._lines else line

    def _set_matches(self, matches: list[Match]) -> None:
        self._matches, self._match_index, self._match_spans = matches, None, {}
        for number, match in enumerate(matches):
            self._match_spans.setdefault(match.line, []).append((match.start, match.end, number))
        self._cache.clear()
        self.refresh()

    def _goto_match(self, number: int) -> None:
        """Put the cursor on match `number`, scrolled into view, drawn as the current one."""
        for old in (self._match_index, number):
            if old is not None:
                self._cache.discard(self._matches[old].line)
        self._match_index = number
        match = self._matches[number]
        row = self._rows.view_row(self._rows.row_of_line(self._view_index(match.line)))
        self._set_cursor(row, follow=False)
        top, height = self.scroll_offset.y, self._page_height
        if not top <= row < top + height:
            self.scroll_to(y=row - height // 4, animate=False)
        shown = self.scroll_x <= match.start < match.end <= self.scroll_x + max(1, self._code_room)
        if self._lines[match.line].kind != "file" and not shown:
            self.scroll_to(x=max(0, match.start - 4), animate=False)
        self.post_message(self.MatchChanged(number, len(self._matches)))
        self.refresh()
