"""The fleet: one pane per run in a grid sized to the terminal."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Static

from orchestra.core.runs.run import Run
from orchestra.ui.key_bar import KeyBar
from orchestra.ui.run_pane import RunPane

MIN_PANE_WIDTH = 38
MIN_PANE_HEIGHT = 8


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """Columns and pane height for count panes: near-square panes (a cell is about twice as tall as
    wide) and few empty grid cells."""
    if count == 0:
        return 1, height
    max_columns = max(1, min(count, width // MIN_PANE_WIDTH))

    def cost(columns: int) -> float:
        rows = math.ceil(count / columns)
        aspect = (width / columns / 2) / max(1, height / rows)
        return abs(math.log(aspect)) + (rows * columns - count) / count

    columns = min(range(1, max_columns + 1), key=cost)
    rows = math.ceil(count / columns)
    return columns, max(MIN_PANE_HEIGHT, height // rows)


class FleetScreen(Screen):
    """Shows every run; arrows move between runs, enter opens the focused one."""

    DEFAULT_CSS = """
    FleetScreen { layout: vertical; }
    #topbar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    #notice { height: auto; background: $primary 15%; color: $foreground; padding: 0 1; border-left: thick $primary; }
    #fleet { height: 1fr; }
    #grid { grid-gutter: 0 1; height: auto; }
    #empty { height: 1fr; content-align: center middle; color: $text-muted; }
    """
    BINDINGS = [
        Binding("enter", "open_run", "Review", id="fleet.open", tooltip="Open the focused run's diff, gates and output"),
        Binding("right,l", "move(1, 0)", "Next", id="fleet.right", show=False, tooltip="Focus the run to the right"),
        Binding("left,h", "move(-1, 0)", "Prev", id="fleet.left", show=False, tooltip="Focus the run to the left"),
        Binding("down,j", "move(0, 1)", "Down", id="fleet.down", show=False, tooltip="Focus the run below"),
        Binding("up,k", "move(0, -1)", "Up", id="fleet.up", show=False, tooltip="Focus the run above"),
    ]

    def __init__(self, title: str, notice: str | None = None, panes: list[RunPane] | None = None) -> None:
        super().__init__()
        self.title_text, self.notice = title, notice
        self.initial_panes = panes or []
        self.columns = 1

    def compose(self) -> ComposeResult:
        yield Static(self.topbar_text([pane.run for pane in self.initial_panes]), id="topbar")
        if self.notice:
            yield Static(self.notice, id="notice")
        with VerticalScroll(id="fleet", can_focus=False):
            with Grid(id="grid") as grid:
                # Shaped for the terminal before the first layout, so the first frame is the final one.
                self.shape_grid(grid, len(self.initial_panes), *self.fleet_area())
                yield from self.initial_panes
            empty = Static(self.app.empty_message() if not self.initial_panes else "", id="empty")
            empty.display = not self.initial_panes
            yield empty
        yield KeyBar()

    def on_mount(self) -> None:
        if self.initial_panes:
            self.initial_panes[0].focus()

    def panes(self) -> list[RunPane]:
        return list(self.query(RunPane))  # empty, not an error, while the screen is being torn down

    def pane(self, run_id: str) -> RunPane | None:
        try:
            return self.query_one(f"#run-{run_id}", RunPane)
        except Exception:
            return None

    def focused_run_id(self) -> str | None:
        return self.focused.run.id if isinstance(self.focused, RunPane) else None

    def show_runs(self, runs: list[Run], events: dict[str, list[dict]], now: float) -> None:
        """Add panes for runs not shown yet and update the rest."""
        grid = self.query_one("#grid", Grid)
        new = []
        for run in runs:
            pane = self.pane(run.id)
            if pane is None:
                new.append(RunPane.with_events(run, events.get(run.id, []), now))
            else:
                pane.show_run(run, now)
                pane.add_events(events.get(run.id, []))
        if new:
            grid.mount_all(new)
            self.call_after_refresh(self.relayout)
            if self.focused is None:
                self.call_after_refresh(new[0].focus)
        self.update_topbar()

    def topbar_text(self, runs: list[Run]) -> str:
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.state] = counts.get(run.state, 0) + 1
        summary = " · ".join(f"{n} {state}" for state, n in counts.items()) or "no runs"
        return f"[b]orchestra[/b]  {escape(self.title_text)}   {summary}"

    def update_topbar(self) -> None:
        runs = [pane.run for pane in self.panes()]
        text = self.topbar_text(runs)
        topbar = self.query_one("#topbar", Static)
        if text != topbar.content:
            topbar.update(text)
        empty = self.query_one("#empty", Static)
        if empty.display != (not runs):
            empty.display = not runs
            empty.update(self.app.empty_message() if not runs else "")

    def on_resize(self) -> None:
        self.relayout()

    def fleet_area(self) -> tuple[int, int]:
        """The size the grid has to fill: the fleet area once laid out, else the terminal less the bars."""
        fleet = self.query("#fleet").first() if self.is_mounted else None
        if fleet is not None and fleet.size.width and fleet.size.height:
            return fleet.size.width, fleet.size.height
        width, height = self.size if self.size.width else self.app.size
        return width, height - 2

    def shape_grid(self, grid: Grid, count: int, width: int, height: int) -> None:
        columns, pane_height = grid_shape(count, width, height)
        self.columns = columns
        grid.display = bool(count)  # an empty grid would push the "no runs" message off screen
        grid.styles.grid_size_columns = columns
        grid.styles.grid_rows = str(pane_height)
        grid.styles.height = pane_height * math.ceil(max(1, count) / columns)

    def relayout(self) -> None:
        grids = self.query("#grid")
        if grids:  # none before the screen is composed: compose shapes the grid then
            self.shape_grid(grids.first(Grid), len(self.panes()), *self.fleet_area())

    def action_move(self, dx: int, dy: int) -> None:
        panes = self.panes()
        if not panes:
            return
        current = panes.index(self.focused) if self.focused in panes else 0
        target = current + dx + dy * self.columns
        if 0 <= target < len(panes):
            # set_focus, not focus(): focus() takes effect later, and the next arrow of a quick burst
            # (typeahead over SSH) would move from the old pane again.
            self.set_focus(panes[target])
            panes[target].scroll_visible()

    def action_open_run(self) -> None:
        run_id = self.focused_run_id()
        if run_id:
            self.app.open_review(run_id)

    def on_run_pane_opened(self, message: RunPane.Opened) -> None:
        self.app.open_review(message.run_id)

    def tick(self, now: float) -> bool:
        """Refresh elapsed times of working runs; return whether any run is still working."""
        active = False
        for pane in self.panes():
            if pane.run.is_active:
                pane.tick(now)
                active = True
        return active

