"""The review screen's Gates tab text: every gate of a run, with each failed check's own output read from
its log (or JUnit report) by a worker, so a log of megabytes never holds up the screen.

Forty failing tests make a text of several hundred lines: laid out whole (as a Static would), it holds
the UI for a few hundred milliseconds (benchmarks/gate_output_bench.py). So the text is kept as lines,
parsed off the UI thread when long, and drawn a row at a time (the Line API): only the rows on screen
are ever rendered."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget

from orchestra.core.base.names import is_check_name
from orchestra.core.gates.commands import gate_log_path
from orchestra.core.gates.failures import GateOutput, gate_output
from orchestra.core.runs.run import Gate, Run
from orchestra.ui.review_text import gate_details

PARSED_AT_ONCE = 20_000  # characters of markup parsed on the UI thread; a longer text is parsed in a worker
OutputKey = tuple[str, float | None, float | None, str | None]  # a gate's name, start, end and tree


def output_key(gate: Gate) -> OutputKey:
    """What says a gate's output is the one read: a rerun of the check changes it."""
    return gate.name, gate.started, gate.finished, gate.tree


class GateDetail(Widget):
    """gate_details of a run; the output of its failed checks is read off the UI thread, once per result."""

    DEFAULT_CSS = "GateDetail { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[Content] = []
        self._rows: tuple[int, list[Content]] = (0, [])  # (width, the lines wrapped to it)
        self.run: Run | None = None
        self.run_dir: Path | None = None
        self.outputs: dict[OutputKey, GateOutput] = {}
        self.reading: set[OutputKey] = set()
        self.shown: str | None = None

    def show_run(self, run: Run, run_dir: Path | None) -> None:
        """Show the run's gates now, and read the output of any failed check not read yet."""
        self.run, self.run_dir = run, run_dir
        self.refresh_text()
        wanted = [output_key(gate) for gate in self.failed_checks(run) if output_key(gate) not in self.outputs]
        unread = [key for key in wanted if key not in self.reading]
        if unread and run_dir is not None:
            self.reading.update(unread)
            self.read_outputs(run_dir, unread)

    @staticmethod
    def failed_checks(run: Run) -> list[Gate]:
        checks = {c.get("name") for c in (run.spec_config or {}).get("verify", []) if isinstance(c, dict)}
        return [gate for gate in run.gates.values()
                if gate.name in checks and gate.status == "failed" and is_check_name(gate.name)]

    @work(thread=True, group="gate-output", exit_on_error=False)
    def read_outputs(self, run_dir: Path, keys: list[OutputKey]) -> None:
        outputs = {key: read_output(gate_log_path(run_dir, key[0])) for key in keys}
        self.app.call_from_thread(self.outputs_read, outputs)

    def outputs_read(self, outputs: dict[OutputKey, GateOutput]) -> None:
        self.outputs.update(outputs)
        self.reading.difference_update(outputs)
        self.refresh_text()

    def refresh_text(self) -> None:
        """Show the current run's gates with the outputs read for their current results (only if the text
        changed)."""
        if self.run is None:
            return
        current = {gate.name: self.outputs[output_key(gate)] for gate in self.run.gates.values()
                   if output_key(gate) in self.outputs}
        text = gate_details(self.run, current, self.run_dir)
        if text == self.shown:
            return
        self.shown = text
        if len(text) <= PARSED_AT_ONCE:
            self.show_lines(text, parse_lines(text))
        else:
            self.parse_in_thread(text)

    @work(thread=True, exclusive=True, group="gate-text")
    def parse_in_thread(self, text: str) -> None:
        lines = parse_lines(text)
        self.app.call_from_thread(self.show_lines, text, lines)

    def show_lines(self, text: str, lines: list[Content]) -> None:
        if text != self.shown:
            return  # a newer text is on its way
        self.lines, self._rows = lines, (0, [])
        self.refresh(layout=True)

    # -- the Line API: rows wrapped once per width, only those on screen rendered --------------------------
    def rows(self, width: int) -> list[Content]:
        """The lines wrapped to width (only the few longer than width are wrapped: that is the costly part)."""
        if self._rows[0] != width or not self._rows[1] and self.lines:
            rows: list[Content] = []
            for line in self.lines:
                rows.extend([line] if line.cell_length <= width else line.wrap(max(1, width)))
            self._rows = (width, rows)
        return self._rows[1]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows(width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        rows = self.rows(width)
        if not 0 <= y < len(rows):
            return Strip.blank(width, self.visual_style.rich_style)
        return Visual.to_strips(self, rows[y], width, 1, self.visual_style, apply_selection=False, pad=True)[0]

    def render(self) -> Content:
        """The whole text (what str() of the tab shows; never drawn whole: render_line draws it)."""
        return Content("\n").join(self.lines)


def read_output(log_path: Path) -> GateOutput:
    """gate_output, or for a log that breaks the reading, the gate's own lines as if it had none (the tab
    must still show the gates)."""
    try:
        return gate_output(log_path)
    except Exception:  # noqa: BLE001 - a surprise in a log is shown as "not found", never a crash
        return GateOutput(log_path)


def parse_lines(text: str) -> list[Content]:
    """The markup text as one Content per line (each line of gate_details closes its own tags)."""
    return [Content.from_markup(line) for line in text.split("\n")]
