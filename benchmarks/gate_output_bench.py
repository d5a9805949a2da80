"""Benchmark: what showing a failed check's own output costs on the review screen's Gates tab.

Run with `python benchmarks/gate_output_bench.py`; prints, for logs of a few sizes, median of REPEATS:
- read: the failing tests from the log's end (gates.failures.gate_output; in a worker thread);
- parse: the tab's text built and its markup parsed, one Content per line (in a worker thread when long);
- draw: on the UI thread, the tab's rows wrapped to 116 columns and the 30 on screen rendered (GateDetail,
  the Line API), against the whole text rendered at once, as a Static does on every change or resize.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import VerticalScroll  # noqa: E402
from textual.content import Content  # noqa: E402
from textual.visual import Visual  # noqa: E402

from orchestra.core.gates.failures import gate_output  # noqa: E402
from orchestra.core.runs.run import Gate, Run  # noqa: E402
from orchestra.ui.gate_detail import GateDetail, parse_lines  # noqa: E402
from orchestra.ui.review_text import gate_details  # noqa: E402

REPEATS = 5
WIDTH, ROWS_SHOWN = 116, 30


def pytest_log(failures: int, noise_bytes: int) -> str:
    """pytest's output: noise_bytes of progress, then `failures` failure sections and the summary."""
    lines = ["." * 79 + " [ 10%]"] * (noise_bytes // 88) + ["=" * 30 + " FAILURES " + "=" * 30]
    for n in range(failures):
        lines += [f"{'_' * 20} test_case_{n:03d} {'_' * 20}", "", f"    def test_case_{n:03d}():",
                  *(f"        value_{i} = compute({i})" for i in range(12)),
                  f">       assert double({n}) == {2 * n + 1}", f"E       assert {2 * n} == {2 * n + 1}",
                  f"E        +  where {2 * n} = double({n})", "", f"tests/test_x.py:{4 * n + 2}: AssertionError"]
    lines += ["=" * 20 + " short test summary info " + "=" * 20]
    lines += [f"FAILED tests/test_x.py::test_case_{n:03d} - assert {2 * n} == {2 * n + 1}" for n in range(failures)]
    return "\n".join(lines + [f"{failures} failed, 260 passed in 3.2s"]) + "\n"


def median_ms(action) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class Tab(App):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield GateDetail()


def draw_ms(widget: GateDetail, lines: list[Content]) -> tuple[float, float]:
    """(Line API, whole text at once): milliseconds on the UI thread to show lines at WIDTH."""
    def line_api() -> None:
        widget.lines, widget._rows = lines, (0, [])
        widget.rows(WIDTH)
        for y in range(ROWS_SHOWN):
            Visual.to_strips(widget, widget.rows(WIDTH)[y], WIDTH, 1, widget.visual_style, apply_selection=False)
    whole = Content("\n").join(lines)
    return median_ms(line_api), median_ms(lambda: Visual.to_strips(widget, whole, WIDTH, None, widget.visual_style))


def run_of(scratch: str, failures: int) -> Run:
    gate = Gate(name="pytest", status="failed", tree="t", passed=260, failed=failures,
                summary=f"{failures} failed, 260 passed")
    return Run(id="r1", agent="a", spec="s", task="t", branch="b", worktree=scratch, base="b", target="main",
               agent_config={}, tree="t", spec_config={"verify": [{"name": "pytest", "command": "pytest"}]},
               gates={"pytest": gate})


async def measure() -> None:
    print(f"{'log':<28}{'size':>8}{'rows':>7}{'read':>10}{'parse':>10}{'draw':>10}{'as a Static':>13}")
    async with Tab().run_test(size=(WIDTH + 4, 36)) as pilot:
        widget = pilot.app.query_one(GateDetail)
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = Path(scratch) / "r1"
            log = run_dir / "gates" / "pytest.log"
            log.parent.mkdir(parents=True)
            for label, failures, noise in (("40 failures", 40, 20_000), ("40 failures after 8 MB", 40, 8_000_000),
                                           ("300 failures", 300, 20_000), ("8 MB, no failure sections", 0, 8_000_000)):
                log.write_text(pytest_log(failures, noise))
                output, run = gate_output(log), run_of(scratch, failures)
                read = median_ms(lambda: gate_output(log))
                text = gate_details(run, {"pytest": output}, run_dir)
                parse = median_ms(lambda: parse_lines(gate_details(run, {"pytest": output}, run_dir)))
                draw, whole = draw_ms(widget, parse_lines(text))
                print(f"{label:<28}{log.stat().st_size / 1e6:>6.1f}MB{len(widget.rows(WIDTH)):>7}{read:>7.1f} ms"
                      f"{parse:>7.1f} ms{draw:>7.1f} ms{whole:>10.1f} ms")


def main() -> None:
    asyncio.run(measure())


if __name__ == "__main__":
    main()
