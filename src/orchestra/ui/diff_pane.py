"""The diff with its search bar under it: the pane the review screen shows beside the list of files."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical

from orchestra.ui.diff_search import SearchBar
from orchestra.ui.diff_view import DiffView

__all__ = ["DiffPane"]


class DiffPane(Vertical):
    """A DiffView and its SearchBar: `/` in the view opens the bar, enter searches, esc closes it."""

    DEFAULT_CSS = """
    DiffPane { width: 1fr; height: 1fr; }
    DiffPane > DiffView { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "close_search", "Close search", show=False)]

    def compose(self) -> ComposeResult:
        yield DiffView()
        yield SearchBar()

    @property
    def search_open(self) -> bool:
        """Whether the search bar shows."""
        return self.query_one(SearchBar).is_open

    def close_search(self) -> None:
        """Hide the bar, take the highlights away and give the keys back to the diff."""
        self.query_one(SearchBar).close()
        view = self.query_one(DiffView)
        view.clear_search()
        view.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.search_open if action == "close_search" else True

    def action_close_search(self) -> None:
        self.close_search()

    def on_diff_view_search_started(self, event: DiffView.SearchStarted) -> None:
        event.stop()
        self.query_one(SearchBar).open()

    def on_search_bar_submitted(self, event: SearchBar.Submitted) -> None:
        event.stop()
        view = self.query_one(DiffView)
        view.focus()
        view.search(event.query)

    def on_diff_view_match_changed(self, event: DiffView.MatchChanged) -> None:
        event.stop()
        self.query_one(SearchBar).show_count(event.current, event.total)
