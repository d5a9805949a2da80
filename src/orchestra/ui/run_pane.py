"""One run in the fleet grid: who, what, how far, the evidence, and the live tail of its output."""

from __future__ import annotations

import itertools
import textwrap
from collections import deque

from textual.content import Content
from textual.events import Click
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget

from orchestra.core.policy import evidence, readiness
from orchestra.core.runs.run import Run
from orchestra.ui.format import (READY, diffstat_markup, duration, event_line, evidence_markup, gates_markup,
                                 state_markup, usage_markup)

TAIL_LINES = 200
MESSAGE_LINES = 2  # a failed run's message gets at most this many lines in the pane


class RunPane(Widget, can_focus=True):
    """Shows one run; focus marks it as the run the keys act on.

    The pane is a single widget that renders its lines itself (status, gates, a failed run's message,
    then as much of the output tail as fits): a fleet of panes is cheap to lay out and style, which
    keeps the first paint fast.
    """

    DEFAULT_CSS = """
    RunPane {
        border: round $panel-lighten-2;
        border-title-color: $foreground;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        height: 1fr;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RunPane:focus { border: round $primary; border-title-style: bold; background: $boost; }
    RunPane.-review { border: round $warning 60%; }
    RunPane.-review:focus { border: round $warning; }
    RunPane.-failed { border: round $error 60%; }
    RunPane.-failed:focus { border: round $error; }
    RunPane.-waiting { border: double $warning 80%; }
    RunPane.-interrupted { border: round $warning 60%; }
    RunPane.-waiting:focus { border: double $warning; }
    """

    class Opened(Message):
        """The conductor asked to review this run."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, run: Run, now: float) -> None:
        # State classes are set up front: changing them after mount restyles the pane.
        super().__init__(id=f"run-{run.id}", classes=f"-{run.state}")
        self.run = run
        # Parsed once when they arrive: a streaming fleet redraws panes many times a second.
        self.tail: deque[Content] = deque(maxlen=TAIL_LINES)
        self.now = now
        self._evidence_line: tuple[int, str] | None = None  # (width, markup), made again when the run changes
        self._set_titles()

    @classmethod
    def with_events(cls, run: Run, events: list[dict], now: float) -> RunPane:
        """A pane for run whose tail starts with the given events."""
        pane = cls(run, now)
        pane.tail.extend(tail_lines(events))
        return pane

    def _set_titles(self) -> None:
        self.border_title = f"{escape(self.run.id)} {escape(self.run.agent)}"
        self.border_subtitle = escape(self.run.spec or "task")

    def status_line(self) -> str:
        usage = usage_markup(self.run)
        return (f"{state_markup(self.run)}  {duration(self.run.elapsed(self.now))}  {diffstat_markup(self.run)}"
                + (f"  {usage}" if usage else ""))

    def evidence_line(self, width: int) -> str:
        """The run's evidence (policy.evidence) fitted to the pane; "ready" when `a` accepts it at once."""
        if not self.run.gates:
            return gates_markup(self.run)
        if self._evidence_line is None or self._evidence_line[0] != width:
            ready = self.run.state == "review" and readiness(self.run).ready
            self._evidence_line = (width, evidence_markup(evidence(self.run), width, READY if ready else ""))
        return self._evidence_line[1]

    def message_lines(self, width: int) -> list[str]:
        """What the conductor must not miss, wrapped to the pane: a failed run's message, a waiting agent's
        question, a kept worktree, or what the agent did to its branch."""
        run, width = self.run, max(10, width)
        if run.state in ("failed", "waiting", "interrupted") and run.message:
            style = "$error" if run.state == "failed" else "$warning"
            return wrapped(run.message, width, style)
        if run.kept:
            return wrapped(f"worktree kept: {run.kept['reason']}", width, "$warning")
        moves = [escape_["what"] for escape_ in run.escapes if not escape_.get("ref")]
        if moves:
            more = f" (+{len(moves) - 1} more)" if len(moves) > 1 else ""
            return wrapped(f"⚠ {moves[0]}{more}", width, "$warning")
        if run.sandbox and not run.sandbox.get("sandboxed"):
            return wrapped(f"⚠ not sandboxed: {run.sandbox.get('why_not') or 'the sandbox is off'}", width, "$warning")
        return []

    def render(self) -> Content:
        width, height = self.size.width or 80, self.size.height or 20
        head = [self.status_line(), self.evidence_line(width), *self.message_lines(width)]
        lines = [Content.from_markup(line) for line in head]
        room = height - len(lines)
        if room > 0 and self.tail:
            lines.extend(itertools.islice(self.tail, max(0, len(self.tail) - room), None))
        return Content("\n").join(lines)

    def show_run(self, run: Run, now: float) -> None:
        """Render the run's state (called when its record changes)."""
        self.run, self.now = run, now
        self._evidence_line = None
        self._set_titles()
        for state in ("review", "failed", "waiting", "interrupted"):
            self.set_class(run.state == state, f"-{state}")
        self.refresh()

    def tick(self, now: float) -> None:
        """Refresh the elapsed time (each second while the run works)."""
        self.now = now
        self.refresh()

    def add_events(self, events: list[dict]) -> None:
        lines = tail_lines(events)
        if lines:
            self.tail.extend(lines)
            self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def on_click(self, event: Click) -> None:
        self.focus()
        if event.chain >= 2:
            self.post_message(self.Opened(self.run.id))


def tail_lines(events: list[dict]) -> list[Content]:
    """The events shown in a pane's tail, as muted text."""
    return [Content.from_markup(f"[$text-muted]{line}[/]") for line in map(event_line, events) if line is not None]


def wrapped(text: str, width: int, style: str) -> list[str]:
    """text in at most MESSAGE_LINES lines of width, styled."""
    lines = textwrap.wrap(text, width, max_lines=MESSAGE_LINES, placeholder=" …")
    return [f"[{style}]{escape(line)}[/]" for line in lines]
