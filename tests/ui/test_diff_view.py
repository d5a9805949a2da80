"""DiffView: navigation on a 20,000-line diff, virtualised rendering, and a snapshot."""

from __future__ import annotations

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
