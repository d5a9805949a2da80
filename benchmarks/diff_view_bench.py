"""Benchmark: parse a 20,000-line diff and page through it in a headless DiffView.

Run with `python benchmarks/diff_view_bench.py`; prints parse time, the time
for 200 `pagedown` presses via Pilot (and the same on an empty view, which is
Pilot's own idle-waiting overhead), and how many lines were rendered and how long
that took.
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


async def time_paging(parsed: ParsedDiff) -> tuple[float, CountingDiffView]:
    """Seconds for PRESSES pagedown presses (with a final repaint), and the view."""
    app = BenchApp(parsed)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(CountingDiffView)
        await pilot.pause()
        view.renders, view.render_seconds = 0, 0.0
        start = time.perf_counter()
        for _ in range(PRESSES):
            await pilot.press("pagedown")
        await pilot.pause()
        elapsed = time.perf_counter() - start
        return elapsed, view


def main() -> None:
    """Run both measurements and print the figures."""
    text = build_diff()
    parse_ms, parsed = time_parse(text)
    print(f"diff: {len(text.splitlines())} input lines, {len(parsed.lines)} view lines, "
          f"{len(parsed.files)} files")
    print(f"parse_diff: {parse_ms:.1f} ms (median of 7)")
    elapsed, view = asyncio.run(time_paging(parsed))
    print(f"{PRESSES} x pagedown via Pilot (120x40 headless): {elapsed * 1000:.0f} ms total, "
          f"{elapsed * 1000 / PRESSES:.1f} ms/press including Pilot's waits for the frame")
    baseline, _ = asyncio.run(time_paging(parse_diff("")))
    print(f"  same presses on an empty DiffView (Pilot/Textual overhead): "
          f"{baseline * 1000 / PRESSES:.1f} ms/press")
    print(f"render_line: {view.renders} calls ({view.renders / PRESSES:.1f}/press), "
          f"{view.render_seconds * 1000:.0f} ms total "
          f"({view.render_seconds * 1000 / PRESSES:.2f} ms/press), "
          f"final scroll y={view.scroll_offset.y}")


if __name__ == "__main__":
    main()
