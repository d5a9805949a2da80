"""Benchmark: open the review screen of a run with 200 findings on a 20,000-line diff, and page through it.

Run with `python benchmarks/review_bench.py`. It builds a real repository (40 files of 250 lines, every
line changed: a 20,000-line diff) and a run in review whose reviewer raised 200 findings (most on
changed lines, some on lines outside the diff, on a file the diff does not touch, or on the whole
change), then, headless (App.run_test, 120x40), measures:

- first paint: from push_screen(ReviewScreen) to the first DiffView.render_line call showing the diff
  (the diff is read by `git diff` and parsed in a worker: both are inside this figure), and to the
  first render_line of the (still empty) DiffView;
- the parts of it: `git diff`, parse_diff, placing 200 findings (DiffRows);
- 200 pagedown presses through Pilot (each waits for the frame), render_line calls and time.

Prints medians over ROUNDS openings (the first, cold one, is printed on its own: it imports Pygments
and the review screen).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from orchestra.core.base.findings import Finding
from orchestra.core.fleet import Fleet
from orchestra.core.git.diffparse import parse_diff
from orchestra.ui.diff_rows import DiffRows
from orchestra.ui.diff_view import DiffView
from tests.ui.fleet_fixture import CLOCK, build_fleet, gate, git, write_run

FILES, LINES_PER_FILE, FINDINGS, PRESSES, ROUNDS = 40, 250, 200, 200, 7
SIZE = (120, 40)


def build(tmp: Path) -> Fleet:
    """The UI tests' fleet plus run r9: the 20,000-line change and its 200 findings."""
    fleet = build_fleet(tmp)
    root = fleet.repo.root
    git(root, "checkout", "-q", "-b", "orchestra/big-base", "main")
    for n in range(FILES):
        path = root / "pkg" / f"mod{n}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(f"value_{i} = compute({i}, 'old')  # was\n" for i in range(LINES_PER_FILE)))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "big base")
    base = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "-b", "orchestra/fix-mean/big-fixer")
    for n in range(FILES):
        (root / "pkg" / f"mod{n}.py").write_text(
            "".join(f"value_{i} = compute({i} + 1)\n" for i in range(LINES_PER_FILE)))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "big change")
    candidate = git(root, "rev-parse", "HEAD")
    tree = git(root, "rev-parse", f"{candidate}^{{tree}}")
    git(root, "checkout", "-q", "main")
    found = [f.to_json() for f in findings()]
    gates = [gate("boundary", "passed", tree, "boundary", summary="within bounds"),
             gate("secrets", "passed", tree, "secrets", summary="no secrets found"),
             gate("pytest", "passed", tree, summary="1200 passed", passed=1200, failed=0),
             gate("review-critic", "failed", tree, "review", verdict="changes requested", findings=found,
                  summary="changes requested", details={"agent": "critic", "model": "m", "provider": "p"})]
    paths = [f"pkg/mod{n}.py" for n in range(FILES)]
    record = {"id": "r9", "agent": "fixer", "state": "review", "started": CLOCK - 60, "finished": CLOCK - 1,
              "candidate": candidate, "tree": tree, "files": (paths, FILES * LINES_PER_FILE, FILES * LINES_PER_FILE),
              "branch": "orchestra/fix-mean/big-fixer", "output": ["done"], "gates": gates}
    write_run(fleet, record, base, fleet.score.spec("fix-mean"))
    return fleet


def findings() -> list[Finding]:
    """200 findings: on changed lines, on a line range, outside the diff, on another file, on the change."""
    rng = random.Random(7)
    out = []
    for n in range(FINDINGS):
        path = f"pkg/mod{rng.randrange(FILES)}.py"
        line = rng.randrange(1, LINES_PER_FILE + 1)
        kind = n % 20
        if kind == 0:
            out.append(Finding(f"whole change {n}", "P2", "review:critic"))
        elif kind == 1:
            out.append(Finding(f"other file {n}", "P3", "review:critic", path="docs/other.md", line_start=3))
        elif kind == 2:
            out.append(Finding(f"outside the diff {n}", "P3", "review:critic", path=path, line_start=900))
        else:
            out.append(Finding(f"finding {n}: value_{line - 1} is off by one", rng.choice(["P0", "P1", "P2", "P3"]),
                               "review:critic", path=path, line_start=line, line_end=line + kind % 3,
                               body="A body long enough to wrap once or twice in a narrow terminal. " * 2,
                               suggestion=f"value_{line - 1} = compute({line - 1})"))
    return out


class Probe:
    """Timestamps of DiffView's first render_line calls after a push (patched onto the class)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.first_any: float | None = None
        self.first_diff: float | None = None
        self.calls = 0
        self.seconds = 0.0
        original = DiffView.render_line

        def render_line(view: DiffView, y: int):
            began = time.perf_counter()
            strip = original(view, y)
            done = time.perf_counter()
            self.calls += 1
            self.seconds += done - began
            if self.first_any is None:
                self.first_any = done
            if self.first_diff is None and view._lines:
                self.first_diff = done
            return strip

        DiffView.render_line = render_line

    def reset(self) -> None:
        self.start, self.first_any, self.first_diff = time.perf_counter(), None, None


async def measure(fleet: Fleet, probe: Probe, cached: bool = False) -> tuple[list[float], list[float], float, int, float]:
    """First-paint times (to the empty view, to the diff) per round, then the paging figures; cached: the
    parsed diff the review screen keeps from an earlier opening is used (reopening), else dropped first."""
    from orchestra.ui import review_screen
    from orchestra.ui.app import OrchestraApp
    to_view, to_diff = [], []
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for _ in range(ROUNDS):
            from orchestra.ui.review_screen import ReviewScreen
            if not cached:
                review_screen._PARSED.clear()  # noqa: SLF001 - measure git diff and parse_diff every time
            probe.reset()
            app.push_screen(ReviewScreen(app.runs["r9"]))
            while probe.first_diff is None:
                await asyncio.sleep(0.0005)
            to_view.append((probe.first_any - probe.start) * 1000)
            to_diff.append((probe.first_diff - probe.start) * 1000)
            await app.workers.wait_for_complete()
            await pilot.pause()
            if _ < ROUNDS - 1:
                app.pop_screen()
                await pilot.pause()
        view = app.screen.query_one(DiffView)
        assert view.finding_count == FINDINGS and len(view._lines) > 20_000
        probe.calls, probe.seconds = 0, 0.0
        start = time.perf_counter()
        for _ in range(PRESSES):
            await pilot.press("pagedown")
        await pilot.pause()
        paging = time.perf_counter() - start
        return to_view, to_diff, paging, probe.calls, probe.seconds


def parts(fleet: Fleet) -> tuple[float, float, float, int]:
    """Median ms of `git diff`, parse_diff and placing the findings; the diff's line count."""
    run = fleet.get("r9")
    diff_ms, parse_ms, place_ms = [], [], []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        text = fleet.diff(run)
        diff_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        parsed = parse_diff(text)
        parse_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        DiffRows(parsed.lines, parsed.files, findings())
        place_ms.append((time.perf_counter() - began) * 1000)
    return statistics.median(diff_ms), statistics.median(parse_ms), statistics.median(place_ms), len(parsed.lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                          ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
            (home / sub).mkdir(parents=True)
            os.environ[name] = str(home / sub)
        fleet = build(Path(tmp) / "fleet")
        diff_ms, parse_ms, place_ms, lines = parts(fleet)
        print(f"run: {lines} diff lines in {FILES} files, {FINDINGS} findings; headless {SIZE[0]}x{SIZE[1]}")
        print(f"parts (median of {ROUNDS}): git diff {diff_ms:.0f} ms · parse_diff {parse_ms:.0f} ms · "
              f"placing the findings {place_ms:.1f} ms")
        probe = Probe()
        to_view, to_diff, paging, calls, seconds = asyncio.run(measure(fleet, probe))
        print(f"first paint, cold (first opening): empty view {to_view[0]:.0f} ms, diff with findings "
              f"{to_diff[0]:.0f} ms")
        print(f"first paint, median of the next {ROUNDS - 1}: empty view {statistics.median(to_view[1:]):.0f} ms, "
              f"diff with findings {statistics.median(to_diff[1:]):.0f} ms "
              f"(min {min(to_diff[1:]):.0f}, max {max(to_diff[1:]):.0f})")
        _, reopened, *_ = asyncio.run(measure(fleet, Probe(), cached=True))
        print(f"reopening (the parsed diff kept from the first opening), median of {ROUNDS - 1}: diff with findings "
              f"{statistics.median(reopened[1:]):.0f} ms")
        print(f"{PRESSES} x pagedown via Pilot: {paging * 1000:.0f} ms total, {paging * 1000 / PRESSES:.1f} ms/press "
              f"(including Pilot's wait for each frame); render_line {calls} calls, {seconds * 1000:.0f} ms "
              f"({seconds * 1000 / PRESSES:.2f} ms/press)")


if __name__ == "__main__":
    main()
