"""Benchmark: parse a 20,000-line diff and page through it in a headless DiffView, unified and side by side,
and search it.

Run with `python benchmarks/diff_view_bench.py`; prints parse time, then a table with one row per view
(unified, side by side): the time to switch to it, the time for 200 `pagedown` presses via Pilot (the same
on an empty view is Pilot's own idle-waiting overhead), and how many lines were rendered and how long that
took; then the time to search every line and jump to the first match, and to move to the next match.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from textual.app import App, ComposeResult  # noqa: E402
from textual.strip import Strip  # noqa: E402

from orchestra.core.git.diffparse import ParsedDiff, parse_diff  # noqa: E402
from orchestra.ui.diff_view import DiffView  # noqa: E402

FILES, LINES_PER_FILE, PRESSES = 40, 500, 200
SIZE = (160, 40)  # side by side needs 120 columns; both views are measured at the same size
QUERY = "value_17"  # value_17 and value_170-179: 880 matches, in every file


def build_diff() -> str:
    """A synthetic Python diff with FILES * LINES_PER_FILE changed lines."""
    out: list[str] = []
    half = LINES_PER_FILE // 2
    for n in range(FILES):
        out += [f"diff --git a/pkg/mod{n}.py b/pkg/mod{n}.py", "index 1111111..2222222 100644",
                f"--- a/pkg/mod{n}.py", f"+++ b/pkg/mod{n}.py", f"@@ -1,{half} +1,{half} @@"]
        for i in range(half):
            out += [f"-    value_{i} = compute({i}, 'old')  # was", f"+    value_{i} = compute({i} + 1)"]
    return "\n".join(out) + "\n"


class CountingDiffView(DiffView):
    """DiffView that counts render_line calls and the time spent in them."""

    renders = 0
    render_seconds = 0.0

    def render_line(self, y: int) -> Strip:
        start = time.perf_counter()
        strip = super().render_line(y)
        self.render_seconds += time.perf_counter() - start
        self.renders += 1
        return strip


class BenchApp(App[None]):
    """One focused DiffView showing the parsed diff."""

    def __init__(self, parsed: ParsedDiff) -> None:
        super().__init__()
        self.parsed = parsed

    def compose(self) -> ComposeResult:
        yield CountingDiffView()

    def on_mount(self) -> None:
        view = self.query_one(DiffView)
        view.set_diff(self.parsed)
        view.focus()


def time_parse(text: str, rounds: int = 7) -> tuple[float, ParsedDiff]:
    """Median parse time in ms over `rounds` runs."""
    timings, parsed = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        parsed = parse_diff(text)
        timings.append((time.perf_counter() - start) * 1000)
    assert parsed is not None
    return statistics.median(timings), parsed


async def time_paging(parsed: ParsedDiff, split: bool = False) -> tuple[float, float, CountingDiffView]:
    """Seconds to switch to side by side (0 for unified), seconds for PRESSES pagedown presses (with a final
    repaint), and the view."""
    app = BenchApp(parsed)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(CountingDiffView)
        await pilot.pause()
        start = time.perf_counter()
        if split:
            await pilot.press("v")
            await pilot.pause()
            assert view.is_split
        switch = time.perf_counter() - start
        view.renders, view.render_seconds = 0, 0.0
        start = time.perf_counter()
        for _ in range(PRESSES):
            await pilot.press("pagedown")
        await pilot.pause()
        elapsed = time.perf_counter() - start
        return switch, elapsed, view


async def time_search(parsed: ParsedDiff) -> tuple[float, int, float]:
    """ms to search every line and jump to the first match, the matches, and ms per `n` (median of 20)."""
    app = BenchApp(parsed)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(CountingDiffView)
        await pilot.pause()
        start = time.perf_counter()
        found = view.search(QUERY)
        await pilot.pause()
        search_ms = (time.perf_counter() - start) * 1000
        steps = []
        for _ in range(20):
            start = time.perf_counter()
            await pilot.press("n")
            await pilot.pause()
            steps.append((time.perf_counter() - start) * 1000)
        return search_ms, found, statistics.median(steps)


def main() -> None:
    """Run the measurements and print the figures."""
    text = build_diff()
    parse_ms, parsed = time_parse(text)
    print(f"diff: {len(text.splitlines())} input lines, {len(parsed.lines)} view lines, "
          f"{len(parsed.files)} files; headless {SIZE[0]}x{SIZE[1]}")
    print(f"parse_diff: {parse_ms:.1f} ms (median of 7)")
    _, baseline, _ = asyncio.run(time_paging(parse_diff("")))
    print(f"{PRESSES} x pagedown on an empty DiffView (Pilot/Textual overhead): {baseline * 1000 / PRESSES:.1f} ms/press")
    print(f"{'view':<14}{'switch ms':>10}{'ms/press':>10}{'renders/press':>15}{'render ms/press':>17}{'final y':>9}")
    for name, split in (("unified", False), ("side by side", True)):
        switch, elapsed, view = asyncio.run(time_paging(parsed, split))
        print(f"{name:<14}{switch * 1000:>10.0f}{elapsed * 1000 / PRESSES:>10.1f}{view.renders / PRESSES:>15.1f}"
              f"{view.render_seconds * 1000 / PRESSES:>17.2f}{view.scroll_offset.y:>9}")
    search_ms, found, step_ms = asyncio.run(time_search(parsed))
    print(f"search {QUERY!r} in every line: {found} matches, {search_ms:.0f} ms to find and show the first; "
          f"n to the next: {step_ms:.1f} ms (median of 20, Pilot's wait included)")


if __name__ == "__main__":
    main()
