"""`/` searches the diff: matches in every file, highlighted and counted, n and N between them, esc closes."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from orchestra.core.git.diffparse import parse_diff
from orchestra.ui.diff_pane import DiffPane
from orchestra.ui.diff_search import SearchBar, find_matches
from orchestra.ui.diff_view import DiffView
from tests.core.test_diffparse import big_diff
from tests.ui.test_diff_view import SMALL_DIFF


class PaneApp(App[None]):
    """A DiffPane showing one diff, focused."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.parsed = parse_diff(text)

    def compose(self) -> ComposeResult:
        yield DiffPane()

    def on_mount(self) -> None:
        self.query_one(DiffView).set_diff(self.parsed)
        self.query_one(DiffView).focus()


def count(app: App) -> str:
    return str(app.screen.query_one("#search-count", Static).render())


async def search(pilot, query: str) -> None:
    await pilot.press("slash", *query, "enter")
    await pilot.pause()


def test_matches_are_found_in_every_file_with_smartcase() -> None:
    lines = parse_diff(SMALL_DIFF).lines
    assert [(lines[m.line].path, m.start) for m in find_matches(lines, "answer")] == [
        ("src/app.py", 4), ("src/app.py", 4), ("src/app.py", 11), ("src/app.py", 6)]
    assert [lines[m.line].text for m in find_matches(lines, "The")] == ['    """The answer."""']
    assert find_matches(lines, "ANSWER") == []  # a capital letter: exactly this case
    assert [lines[m.line].text for m in find_matches(lines, "the")] == ['    """The answer."""']  # either case
    assert [lines[m.line].path for m in find_matches(lines, "notes.txt")][:1] == ["docs/notes.txt"]
    assert find_matches(lines, "") == []


async def test_slash_searches_across_files_and_counts() -> None:
    app = PaneApp(big_diff(files=5, lines_per_file=40))
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.query_one(DiffView)
        assert not app.screen.query_one(SearchBar).display
        await search(pilot, "value_7 ")
        assert count(app) == "1 of 10"  # a removed and an added line in each of 5 files
        line = view.line_at_cursor()
        assert line.path == "pkg/mod0.py" and "value_7 " in line.text and view.has_focus
        for _ in range(2):
            await pilot.press("n")
        assert count(app) == "3 of 10" and view.line_at_cursor().path == "pkg/mod1.py"
        await pilot.press("N", "N", "N")
        assert count(app) == "10 of 10" and view.line_at_cursor().path == "pkg/mod4.py"  # wraps round
        await pilot.press("n")
        assert count(app) == "1 of 10"


async def test_matches_are_highlighted_and_the_current_one_stands_out() -> None:
    app = PaneApp(SMALL_DIFF)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        await search(pilot, "answer")
        styles = view._palette()
        row = view.cursor - view.scroll_offset.y
        current = [s for s in view.render_line(row) if s.style and s.style.bgcolor == styles["match-current"].bgcolor]
        assert [s.text for s in current] == ["answer"]
        await pilot.press("n")
        marked = [s.text for s in view.render_line(row) if s.style and s.style.bgcolor == styles["match"].bgcolor]
        assert marked == ["answer"]  # no longer the current one, still highlighted


async def test_no_match_says_so_and_esc_closes_and_clears() -> None:
    app = PaneApp(SMALL_DIFF)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        await search(pilot, "nowhere to be found")
        assert count(app) == "no matches"
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.value == "nowhere to be found"
        await pilot.press("escape")
        assert not app.screen.query_one(SearchBar).display and view.has_focus
        await search(pilot, "answer")
        assert count(app) == "1 of 4"
        await pilot.press("escape")
        assert not app.screen.query_one(SearchBar).display and view._match_spans == {}
        assert not view.check_action("next_match", ())  # n means what it means elsewhere again


async def test_in_the_review_esc_closes_the_search_first_and_q_is_typed(tmp_path) -> None:
    from orchestra.ui.review_screen import ReviewScreen
    from tests.ui.test_diff_view import review_r3
    async with review_r3(tmp_path, (120, 30)) as (app, pilot):
        await pilot.press("slash", "q", "u", "e")
        assert isinstance(app.screen, ReviewScreen) and app.focused.value == "que"
        await pilot.press("backspace", "backspace", "backspace", *"median", "enter")
        assert count(app) == "1 of 2" and app.screen.query_one(DiffView).line_at_cursor().path == "tests/test_median.py"
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen) and not app.screen.query_one(SearchBar).display
        await pilot.press("escape")
        assert not isinstance(app.screen, ReviewScreen)


async def test_a_match_past_the_right_edge_is_scrolled_into_view() -> None:
    app = PaneApp(SMALL_DIFF)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        await search(pilot, "columns wide")
        assert count(app) == "1 of 1" and view.scroll_x > 0
        assert "columns wide" in view.render_line(view.cursor - view.scroll_offset.y).text


async def test_search_works_side_by_side() -> None:
    app = PaneApp(SMALL_DIFF)
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(DiffView)
        await pilot.press("v")
        await search(pilot, "answer")
        assert view.is_split and count(app) == "1 of 4"
        row = view.render_line(view.cursor - view.scroll_offset.y)
        assert "def answer():" in row.text and "def answer() -> int:" in row.text  # the pair's row
        current = view._palette()["match-current"].bgcolor
        assert [s.text for s in row if s.style and s.style.bgcolor == current] == ["answer"]
        await pilot.press("n")  # the added line of the same row: the right side's match is now the current one
        row = view.render_line(view.cursor - view.scroll_offset.y)
        assert count(app) == "2 of 4" and row.text.split("│")[1].count("answer") == 1
        assert [s.text for s in row.divide([70, 140])[1] if s.style and s.style.bgcolor == current] == ["answer"]
