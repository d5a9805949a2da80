"""One run in the fleet grid: who, what, how far, the evidence, and the live tail of its output."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Static

from orchestra.core.run import Run
from orchestra.ui.format import diffstat_markup, duration, event_line, gates_markup, state_markup

TAIL_LINES = 200


class RunPane(Vertical, can_focus=True):
    """Shows one run; focus marks it as the run the keys act on."""

    DEFAULT_CSS = """
    RunPane {
        border: round $panel-lighten-2;
        border-title-color: $foreground;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        height: 1fr;
        background: $surface;
    }
    RunPane:focus { border: round $primary; border-title-style: bold; background: $boost; }
    RunPane.-review { border: round $warning 60%; }
    RunPane.-review:focus { border: round $warning; }
    RunPane.-failed { border: round $error 60%; }
    RunPane.-failed:focus { border: round $error; }
    RunPane > .status, RunPane > .gates { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    RunPane > .message { height: auto; max-height: 2; color: $error; }
    RunPane > .tail { height: 1fr; color: $text-muted; overflow: hidden; text-wrap: nowrap; text-overflow: ellipsis; }
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
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._now = now

    @classmethod
    def with_events(cls, run: Run, events: list[dict], now: float) -> RunPane:
        """A pane for run whose tail starts with the given events."""
        pane = cls(run, now)
        pane.tail.extend(line for line in map(event_line, events) if line is not None)
        return pane

    def compose(self) -> ComposeResult:
        yield Static(classes="status")
        yield Static(classes="gates")
        yield Static(classes="message")
        yield Static(classes="tail")

    def on_mount(self) -> None:
        self.show_run(self.run, self._now)

    def show_run(self, run: Run, now: float) -> None:
        """Render the run's state (called when its record changes, and each second while it works)."""
        self.run = run
        spec = run.spec or "task"
        self.border_title = f"{escape(run.id)} {escape(run.agent)}"
        self.border_subtitle = escape(spec)
        for state in ("review", "failed"):
            self.set_class(run.state == state, f"-{state}")
        self.query_one(".status", Static).update(
            f"{state_markup(run)}  {duration(run.elapsed(now))}  {diffstat_markup(run)}")
        self.query_one(".gates", Static).update(gates_markup(run))
        message = self.query_one(".message", Static)
        message.update(escape(run.message) if run.state == "failed" and run.message else "")
        message.display = bool(run.state == "failed" and run.message)

    def tick(self, now: float) -> None:
        """Refresh the elapsed time only."""
        if not self.children:
            return  # not composed yet: on_mount renders everything
        self.query_one(".status", Static).update(
            f"{state_markup(self.run)}  {duration(self.run.elapsed(now))}  {diffstat_markup(self.run)}")

    def add_events(self, events: list[dict]) -> None:
        lines = [line for line in map(event_line, events) if line is not None]
        if not lines:
            return
        self.tail.extend(lines)
        self.render_tail()

    def render_tail(self) -> None:
        if not self.children:
            return
        tail = self.query_one(".tail", Static)
        visible = max(1, tail.size.height or 20)
        tail.update("\n".join(list(self.tail)[-visible:]))

    def on_resize(self) -> None:
        self.render_tail()

    def on_click(self) -> None:
        self.focus()
