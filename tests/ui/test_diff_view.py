"""DiffView: navigation on a 20,000-line diff, virtualised rendering, and a snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip

from orchestra.core.git.diffparse import ParsedDiff, parse_diff
from orchestra.ui.diff_view import DiffView, _highlight, _lexer_for
from tests.core.test_diffparse import big_diff

SMALL_DIFF = """\
diff --git a/src/app.py b/src/app.py
index 1083d26..eca386f 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,6 +1,7 @@
 import os
 
-def answer():
-    return 41  # wrong
+def answer() -> int:
+    \"\"\"The answer.\"\"\"
+    return 42
 
 print(answer(), os.sep)
diff --git a/notes.txt b/docs/notes.txt
similarity index 90%
rename from notes.txt
rename to docs/notes.txt
index b566061..2019eda 100644
--- a/notes.txt
+++ b/docs/notes.txt
@@ -9,3 +9,3 @@ eight
 nine
-ten\tcolumns
+ten\tcolumns and a line long enough to need horizontal scrolling in a terminal that is one hundred columns wide
 eleven
\\ No newline at end of file
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..9db7df0
Binary files /dev/null and b/logo.png differ
"""


class CountingDiffView(DiffView):
    """DiffView that counts render_line calls."""

    renders = 0

    def render_line(self, y: int) -> Strip:
        self.renders += 1
        return super().render_line(y)


class DiffApp(App[None]):
    """Hosts one DiffView and records FileScrolled paths."""

    def __init__(self, parsed: ParsedDiff) -> None:
        super().__init__()
        self.parsed = parsed
        self.scrolled: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield CountingDiffView()

    def on_mount(self) -> None:
        self.query_one(DiffView).set_diff(self.parsed)
        self.query_one(DiffView).focus()

    def on_diff_view_file_scrolled(self, event: DiffView.FileScrolled) -> None:
        self.scrolled.append(event.path)


async def test_large_diff_navigation_renders_only_the_viewport() -> None:
    parsed = parse_diff(big_diff())
    app = DiffApp(parsed)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(CountingDiffView)
        await pilot.pause()
        assert view.virtual_size.height == len(parsed.lines) > 20_000
        assert view.renders <= 3 * 30
        assert view.current_file() == "pkg/mod0.py"

        await pilot.press("]")
        assert view.scroll_offset.y == parsed.files[1].first_line
        assert view.current_file() == "pkg/mod1.py"

        view.renders = 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert view.scroll_offset.y == parsed.files[1].first_line + view.scrollable_content_region.height
        assert 0 < view.renders <= 3 * 30

        view.renders = 0
        await pilot.press("end")
        await pilot.pause()
        assert view.scroll_offset.y == view.max_scroll_y == len(parsed.lines) - 30
        assert view.current_file() == "pkg/mod39.py"
        assert 0 < view.renders <= 3 * 30
        assert app.scrolled == ["pkg/mod0.py", "pkg/mod1.py", "pkg/mod39.py"]


async def test_file_and_line_keys() -> None:
    parsed = parse_diff(big_diff(files=5, lines_per_file=40))
    app = DiffApp(parsed)
    starts = [file.first_line for file in parsed.files]
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        await pilot.press("]", "]")
        assert view.scroll_offset.y == starts[2]
        await pilot.press("j", "j", "down")  # the cursor moves; the view scrolls only when it must
        assert view.cursor == starts[2] + 3 and view.scroll_offset.y == starts[2]
        await pilot.press("[")  # mid-file: back to this file's header
        assert view.scroll_offset.y == starts[2]
        await pilot.press("[", "k")
        assert view.scroll_offset.y == starts[1] - 1
        await pilot.press("G")
        assert view.scroll_offset.y == view.max_scroll_y
        await pilot.press("g")
        assert view.scroll_offset.y == 0
        await pilot.press("space")
        assert view.scroll_offset.y == view.scrollable_content_region.height
        view.scroll_to_file("pkg/mod3.py")
        assert view.current_file() == "pkg/mod3.py"


async def test_gutter_stays_put_when_scrolling_horizontally() -> None:
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        long_row = next(i for i, l in enumerate(view._lines) if "horizontal" in l.text)
        before = view.render_line(long_row).text
        await pilot.press("right", "right", "right", "right")
        assert view.scroll_offset.x == 4
        after = view.render_line(long_row).text
        assert after[:10] == before[:10] == "     10 + "
        assert before[10:].startswith("ten columns and")  # the tab is expanded
        assert after[10:].startswith("columns and")
        assert len(before) == len(after) == 100


async def test_scroll_to_file_accepts_the_old_name_of_a_rename() -> None:
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(100, 8)):
        view = app.query_one(DiffView)
        assert view.current_file() == "src/app.py"
        view.scroll_to_file("notes.txt")
        assert view.current_file() == "docs/notes.txt"
        assert view.render_line(0).text.startswith(" notes.txt → docs/notes.txt  renamed  +1 -1")


def test_highlighting_maps_tokens_to_roles() -> None:
    spans = dict((text.strip(), role) for text, role in _highlight(
        "def f(): return 'x'  # c", _lexer_for("a.py")))
    assert spans["def"] == "keyword"
    assert spans["f"] == "function"
    assert spans["'x'"] == "string"
    assert spans["# c"] == "comment"
    assert _highlight("plain", _lexer_for("no-such-kind.zzz")) == (("plain", None),)


def test_snapshot_small_diff(snap_compare) -> None:
    assert snap_compare(DiffApp(parse_diff(SMALL_DIFF)), terminal_size=(100, 30))


def texts(view: DiffView, rows: int) -> list[str]:
    return [view.render_line(y).text for y in range(rows)]


async def test_v_shows_old_and_new_side_by_side() -> None:
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(DiffView)
        assert not view.is_split  # unified is the default
        await pilot.press("v")
        assert view.is_split
        rows = texts(view, 10)
        assert rows[0].startswith(" src/app.py  modified  +3 -2")  # headers and hunks span both sides
        assert rows[2].startswith("          @@ -1,6 +1,7 @@") and "│" not in rows[2]
        left, right = zip(*(row.split("│") for row in rows[3:9]))
        assert [text.rstrip() for text in left] == [
            "  1   import os", "  2", "  3 - def answer():", "  4 -     return 41  # wrong", "", "  5"]
        assert [text.rstrip() for text in right] == [
            "  1   import os", "  2", "  3 + def answer() -> int:", '  4 +     """The answer."""',
            "  5 +     return 42", "  6"]
        assert all(len(row) == 140 for row in rows)
        await pilot.press("v")
        assert not view.is_split and texts(view, 4)[3].startswith("  1   1   import os")
        await pilot.press("v")
        view.set_diff(parse_diff(SMALL_DIFF))  # a new diff (the run changed) shows side by side too
        assert view.is_split and "│" in texts(view, 4)[3]


async def test_side_by_side_keeps_highlighting_findings_and_file_keys() -> None:
    from orchestra.core.base.findings import Finding
    parsed = parse_diff(SMALL_DIFF)
    finding = Finding(title="returns an int now", priority="P2", source="reviewer", path="src/app.py",
                      line_start=3)
    app = DiffApp(parsed)
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(DiffView)
        view.set_findings([finding])
        await pilot.press("v")
        rows = texts(view, 10)
        assert "def answer() -> int:" in rows[5] and "P2 reviewer: returns an int now" in rows[6]
        keyword = view._palette()["keyword"].color
        assert any(segment.text == "def" and segment.style.color == keyword for segment in view.render_line(5))
        await pilot.press("]")  # the next file's header, counted in side-by-side rows
        header = view.line_at_cursor()
        assert header.kind == "file" and header.path == "docs/notes.txt"
        assert view.render_line(view.cursor - view.scroll_offset.y).text.startswith(" notes.txt → docs/notes.txt")
        await pilot.press("[", "}")
        assert view.finding_at_cursor() == finding


async def test_side_by_side_falls_back_to_unified_on_a_narrow_terminal() -> None:
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        await pilot.press("v")
        assert not view.is_split
        assert [n.message for n in app._notifications] == [
            ("Side by side needs a terminal of 120 columns (this one has 100): the diff stays unified until "
             "it is wider.")]
        await pilot.resize_terminal(140, 30)
        await pilot.pause()
        assert view.is_split
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not view.is_split


async def test_side_by_side_on_a_20000_line_diff_keeps_the_line_in_view() -> None:
    parsed = parse_diff(big_diff())
    app = DiffApp(parsed)
    async with app.run_test(size=(140, 30)) as pilot:
        view = app.query_one(CountingDiffView)
        await pilot.press("]", "]", "j", "j")
        line = view.line_at_cursor()
        await pilot.press("v")
        assert view.line_at_cursor() == line and view.virtual_size.height < len(parsed.lines)
        view.renders = 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert 0 < view.renders <= 3 * 30


async def test_the_file_header_under_the_cursor_is_marked_whole() -> None:
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(100, 8)) as pilot:
        view = app.query_one(DiffView)
        await pilot.press("]")
        header = view.render_line(0)
        assert header.text.startswith(" notes.txt → docs/notes.txt")
        assert all(segment.style.reverse for segment in header if segment.text.strip())
        await pilot.press("j")
        assert not any(segment.style.reverse for segment in view.render_line(0))


@asynccontextmanager
async def review_r3(tmp_path, size: tuple[int, int]) -> AsyncIterator[tuple]:
    """The app at size, its review of r3 (two changed files) open with its diff loaded; yields (app, pilot)."""
    from orchestra.ui.app import OrchestraApp
    from orchestra.ui.review_screen import ReviewScreen
    from tests.ui.fleet_fixture import CLOCK, build_fleet
    app = OrchestraApp(build_fleet(tmp_path), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.screen.query_one("#run-r3").focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        yield app, pilot


async def test_the_file_list_follows_the_diff(tmp_path) -> None:
    from textual.widgets import OptionList
    async with review_r3(tmp_path, (80, 14)) as (app, pilot):
        files = app.screen.query_one("#files", OptionList)
        paths = [option.id for option in files.options]
        assert paths == ["README.md", "tests/test_median.py"] and files.highlighted == 0
        await pilot.press("]")
        assert files.highlighted == 1
        await pilot.press("[")
        assert files.highlighted == 0
        await pilot.press("G")  # scrolling: the file at the cursor (on screen) is the one highlighted
        assert files.highlighted == 1
        await pilot.press("g")
        assert files.highlighted == 0


@pytest.mark.parametrize("width", [80, 120])
async def test_the_review_key_bar_fits_with_whole_keys(tmp_path, width: int) -> None:
    from orchestra.ui.key_bar import KeyBar
    async with review_r3(tmp_path, (width, 30)) as (app, _pilot):
        shown = app.screen.query_one(KeyBar).render().plain
        assert len(shown) <= width and "…" not in shown
        hints = [hint.strip() for hint in shown.split("▏")[0].split("  ") if hint.strip()]
        for hint in ("a Accept", "r Reject", "d Redirect", "esc Fleet", "} { Finding", "c Comment", "? Keys"):
            assert hint in hints
        assert all(hint in {"x Select", "/ Search", "v Split", "s Stop", "o Shell", "n New", "a Accept",
                            "r Reject", "d Redirect", "esc Fleet", "} { Finding", "c Comment", "? Keys"}
                   for hint in hints)  # every hint whole
        if width == 120:
            assert {"x Select", "/ Search", "v Split"} <= set(hints)


async def test_a_note_on_the_whole_change_keeps_the_current_file() -> None:
    from orchestra.core.base.findings import Finding
    app = DiffApp(parse_diff(SMALL_DIFF))
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(DiffView)
        view.set_findings([Finding(title="no changelog", priority="P2", source="critic")])
        await pilot.press("g")  # the note before the first file: no line, no path of its own
        assert view.finding_at_cursor().title == "no changelog"
        await pilot.press("]", "]")  # the cursor moves to other files while nothing scrolls
        assert view.scroll_offset.y == 0 and app.scrolled[-2:] == ["src/app.py", "docs/notes.txt"]
