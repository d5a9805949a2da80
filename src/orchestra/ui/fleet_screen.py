"""The fleet: one pane per shown run in a grid sized to the terminal, or a compact list beside the current run's pane."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.markup import escape
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from orchestra.core.runs.run import Run
from orchestra.core.runs.run import group_of
from orchestra.ui.fleet_filter import FleetView, group_label, group_sizes
from orchestra.ui.fleet_grid import Body, FleetScroll, PaneGrid, grid_shape
from orchestra.ui.key_bar import KeyBar
from orchestra.ui.run_pane import TAIL_LINES, RunPane

if TYPE_CHECKING:  # the list and the filter's input are made on first use: the first paint does not need them
    from textual.widgets import Input, OptionList

    from orchestra.core.runs.feed import FleetFeed
    from orchestra.ui.run_list import RunList

LIST_BESIDE_WIDTH = 140  # from this width the list view shows the current run's pane beside the list
# Archived runs' output is read when H shows them: up to this much (a few ms of parsing) right away, so the
# panes come with the key; more in a worker, so the UI does not wait for it.
READ_IN_PLACE = 512 * 1024


# The keys the bar keeps when the terminal is too narrow for all of them, most important first.
KEY_RANKING = ("fleet.open", "run.accept", "run.reject", "run.redirect", "app.help", "app.quit", "fleet.new",
               "run.stop", "run.shell", "fleet.filter", "fleet.list")

class FleetScreen(Screen):
    """Shows the runs; arrows move between them, enter opens the current one."""

    DEFAULT_CSS = """
    FleetScreen { layout: vertical; }
    #topbar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    #notice-bar { height: auto; max-height: 3; background: $primary 15%; border-left: thick $primary; }
    #notice { width: 1fr; height: auto; max-height: 3; color: $foreground; padding: 0 1; }
    #filter { height: 1; border: none; padding: 0 1; background: $boost; }
    #body { height: 1fr; }
    #run-list { width: 1fr; }
    #body.-beside #run-list { width: 55%; max-width: 100; }
    #fleet { height: 1fr; }
    #grid { grid-gutter: 0 1; height: auto; }
    #empty { height: 1fr; content-align: center middle; color: $text-muted; }
    """
    AUTO_FOCUS = ""  # the first pane takes the focus (on_mount); never the hidden filter input
    # Textual repaints the whole screen whenever the focus moves (Screen.focused repaints): with 16 panes at
    # 160x48 every arrow cost a full frame (about 20 ms and 20 kB to the terminal). The panes that gain and
    # lose the focus repaint themselves, and the key bar follows the bindings.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
    BINDINGS = [
        Binding("enter", "open_run", "Review", id="fleet.open", tooltip="Open the focused run's diff, gates and output"),
        Binding("right,l", "move(1, 0)", "Next", id="fleet.right", show=False, tooltip="Focus the run to the right"),
        Binding("left,h", "move(-1, 0)", "Prev", id="fleet.left", show=False, tooltip="Focus the run to the left"),
        Binding("down,j", "move(0, 1)", "Down", id="fleet.down", show=False, tooltip="Focus the run below"),
        Binding("up,k", "move(0, -1)", "Up", id="fleet.up", show=False, tooltip="Focus the run above"),
        Binding("slash", "filter", "Filter", id="fleet.filter",
                tooltip="Show only runs whose state, spec, agent or id hold every typed word; esc clears"),
        Binding("v", "toggle_list", "List", id="fleet.list",
                tooltip="Switch between the grid of panes and a compact list (one line per run)"),
        Binding("H", "toggle_archive", "Decided", id="fleet.archive", show=False,
                tooltip="Show or hide accepted and rejected runs"),
        Binding("exclamation_mark", "sort", "Sort", id="fleet.sort", show=False,
                tooltip="Sort by state, the runs that need you first, or by age"),
        Binding("x", "dismiss_notice", "Hide notice", id="fleet.dismiss", show=False,
                tooltip="Hide the notice under the top bar"),
        Binding("escape", "clear_filter", "Clear filter", id="fleet.clear_filter", show=False,
                tooltip="Clear the filter"),
    ]

    def __init__(self, title: str, notice: str | None = None, runs: list[Run] | None = None,
                 events: dict[str, list[dict]] | None = None, now: float = 0.0, feed: FleetFeed | None = None) -> None:
        super().__init__()
        self.title_text, self.notice = title, notice
        self.view = FleetView()
        self.list_mode = False
        self.now = now
        self.columns = 1
        self.runs: dict[str, Run] = {run.id: run for run in runs or []}
        self.made: dict[str, RunPane] = {}  # the panes made so far, shown or not
        # Output of runs without a pane yet (archived, filtered out): a pane is made when one is shown.
        self.unshown: dict[str, deque[dict]] = {run_id: deque(found, maxlen=TAIL_LINES)
                                                for run_id, found in (events or {}).items()}
        self.order: list[str] = []
        # Runs whose output the feed has not read yet (archived at start: the first frame does not need it).
        self.feed = feed
        self.unread: set[str] = set(feed.deferred) if feed is not None else set()
        self.reading = False

    # -- building ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        shown = self.panes_to_show()
        yield Static(self.topbar_text(), id="topbar")
        if self.notice:
            with Horizontal(id="notice-bar"):
                yield Static(self.notice_text(self.app.size.width), id="notice")
        with Body(id="body"):
            with FleetScroll(id="fleet", can_focus=False):
                with PaneGrid(id="grid") as grid:
                    # Shaped for the terminal before the first layout, so the first frame is the final one.
                    self.shape_grid(grid, len(shown), *self.fleet_area())
                    yield from shown
                yield Static(self.empty_text() if not self.order else "", id="empty")
        yield KeyBar(ranking=KEY_RANKING)

    def on_mount(self) -> None:
        self.query_one("#empty").display = not self.order
        panes = self.shown_panes()
        if panes:
            panes[0].focus()

    def on_screen_resume(self) -> None:
        """Show the output and states the panes held while another screen was on top."""
        for pane in self.made.values():
            pane.release()

    def panes_to_show(self) -> list[RunPane]:
        """Order the shown runs, and the panes for them (made now for runs that have none)."""
        shown = self.view.arrange(list(self.runs.values()))
        self.order = [run.id for run in shown]
        sizes = group_sizes(list(self.runs.values()))
        if self.list_mode:
            current = self.run_list().highlighted_run_id()
            shown = [self.runs[current]] if current and self.list_beside() else []
        panes = [self.pane_for(run.id) for run in shown]
        for pane in panes:
            pane.set_group_label(group_label(group_of(pane.run), sizes[group_of(pane.run)]))
            pane.live = self.list_mode
        return panes

    def pane_for(self, run_id: str) -> RunPane:
        pane = self.made.get(run_id)
        if pane is None:
            pane = RunPane.with_events(self.runs[run_id], list(self.unshown.pop(run_id, ())), self.now)
            self.made[run_id] = pane
        return pane

    # -- what the app asks --------------------------------------------------------------------------
    def panes(self) -> list[RunPane]:
        return list(self.query(RunPane))  # empty, not an error, while the screen is being torn down

    def shown_panes(self) -> list[RunPane]:
        """The panes on screen, in grid order."""
        return [pane for pane in self.panes() if pane.display]

    def pane(self, run_id: str) -> RunPane | None:
        pane = self.made.get(run_id)
        return pane if pane is not None and pane.is_attached else None

    def focused_run_id(self) -> str | None:
        """The run the keys act on: the list's highlighted run in the list view, else the focused pane's."""
        if self.list_mode:
            return self.run_list().highlighted_run_id()
        return self.focused.run.id if isinstance(self.focused, RunPane) else None

    def show_runs(self, runs: list[Run], events: dict[str, list[dict]], now: float) -> None:
        """Update the runs' panes (a pane only for a run that is shown) and re-arrange when that changes."""
        self.now = now
        rearrange = False
        for run in runs:
            before = self.runs.get(run.id)
            self.runs[run.id] = run
            rearrange = rearrange or before is None or before.state != run.state
            pane = self.made.get(run.id)
            if pane is None:
                self.unshown.setdefault(run.id, deque(maxlen=TAIL_LINES)).extend(events.get(run.id, []))
            else:
                pane.show_run(run, now)
                pane.add_events(events.get(run.id, []))
        if rearrange:
            self.rearrange()
        elif self.list_mode:
            self.refresh_list()
        self.update_topbar()

    def tick(self, now: float) -> bool:
        """Refresh elapsed times of working runs on screen; return whether any run is still working."""
        self.now = now
        for pane in self.shown_panes():
            if pane.run.is_active:
                pane.tick(now)
        return any(run.is_active for run in self.runs.values())

    # -- arranging ---------------------------------------------------------------------------------
    def rearrange(self) -> None:
        """Show the runs the view selects, in its order; hide the other panes (they keep their output)."""
        if not self.is_mounted:
            return
        grid = self.query_one("#grid", Grid)
        if self.list_mode:
            self.refresh_list()
        shown = self.panes_to_show()
        new = [pane for pane in shown if not pane.is_attached]
        if new:
            grid.mount_all(new)
        for pane in self.panes():
            pane.display = pane in shown
        for place, pane in enumerate(shown):
            if grid.children[place] is not pane:
                grid.move_child(pane, before=place)
        self.relayout()
        self.keep_focus(shown)
        self.update_topbar()

    def keep_focus(self, shown: list[RunPane]) -> None:
        """A pane that left the grid gives the focus to the first shown pane (the list keeps its own)."""
        if self.list_mode:
            return
        if shown and (self.focused is None or (isinstance(self.focused, RunPane) and self.focused not in shown)):
            self.set_focus(shown[0])

    def refresh_list(self) -> None:
        shown = [self.runs[run_id] for run_id in self.order]
        self.run_list().show(shown, group_sizes(list(self.runs.values())), self.now)

    def run_list(self) -> RunList:
        """The compact list, made (hidden) the first time it is asked for."""
        from orchestra.ui.run_list import RunList
        found = self.query(RunList)
        if found:
            return found.first()
        run_list = RunList()
        run_list.display = False
        self.query_one("#body").mount(run_list, before=0)
        return run_list

    def filter_input(self) -> Input:
        """The filter's one-line input, made the first time it is asked for."""
        from textual.widgets import Input
        found = self.query("#filter")
        if found:
            return found.first(Input)
        filter_input = Input(placeholder="filter: state, spec, agent (esc clears)", id="filter")
        self.mount(filter_input, before=self.query_one("#body"))
        return filter_input

    def list_beside(self) -> bool:
        return (self.size.width or self.app.size.width) >= LIST_BESIDE_WIDTH

    # -- the top bar and the empty fleet ---------------------------------------------------------------
    def topbar_text(self) -> str:
        summary = self.view.summary(list(self.runs.values()), self.key_of("fleet.archive", "H"))
        return f"[b]orchestra[/b]  {escape(self.title_text)}   {summary}"

    def key_of(self, binding_id: str, default: str) -> str:
        """The key the conductor's keymap gives a binding (its first), for telling them which to press."""
        keymap = getattr(self.app, "keymap", {}) or {}
        return (keymap.get(binding_id) or default).split(",")[0].strip()

    def empty_text(self) -> str:
        if not self.runs:
            return self.app.empty_message()
        if self.view.words:
            return (f"No run matches “{escape(' '.join(self.view.words))}”: "
                    f"{self.key_of('fleet.filter', '/')} changes the filter, esc clears it.")
        return f"Every run is decided: {self.key_of('fleet.archive', 'H')} shows them."

    def update_topbar(self) -> None:
        text = self.topbar_text()
        topbar = self.query_one("#topbar", Static)
        if text != topbar.content:
            topbar.update(text)
        empty = self.query_one("#empty", Static)
        nothing = not self.order
        text = self.empty_text() if nothing else ""
        if empty.display != nothing or (nothing and text != empty.content):
            empty.display = nothing
            empty.update(text)

    # -- layout --------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        if self.list_mode:
            self.list_layout()
            self.rearrange()  # the pane beside the list comes or goes with the width
        else:
            self.relayout()

    def list_layout(self) -> None:
        """The list alone on a narrow terminal; on a wide one, the current run's pane beside it."""
        for run_list in self.query("#run-list"):
            run_list.display = self.list_mode
        self.query_one("#body").set_class(self.list_mode and self.list_beside(), "-beside")
        self.query_one("#fleet").display = not self.list_mode or self.list_beside()

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
            self.shape_grid(grids.first(Grid), len(self.shown_panes()), *self.fleet_area())
            # The fleet area changes size when the list or the notice comes or goes: shape again after that.
            self.call_after_refresh(self._reshape)

    def _reshape(self) -> None:
        grids = self.query("#grid")
        if grids:
            self.shape_grid(grids.first(Grid), len(self.shown_panes()), *self.fleet_area())

    # -- keys ---------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "dismiss_notice":
            return bool(self.query("#notice-bar"))
        if action == "clear_filter":
            return bool(self.view.words) or any(found.display for found in self.query("#filter"))
        return True

    def action_move(self, dx: int, dy: int) -> None:
        if self.list_mode:
            run_list = self.run_list()
            if dy > 0:
                run_list.action_cursor_down()
            elif dy < 0:
                run_list.action_cursor_up()
            return
        panes = self.shown_panes()
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

    def action_toggle_archive(self) -> None:
        view = self.view.toggle_decided()
        unread = [run_id for run_id in self.unread if run_id in self.runs and view.shows(self.runs[run_id])]
        if unread and self.feed is not None:
            if self.reading:
                return  # the first press's panes are on their way
            if self.feed.unread_bytes(unread) > READ_IN_PLACE:
                self.reading = True
                self.read_archived(unread)
                return
            self.archived_read(unread, self.feed.tails(unread))
        self.view = view
        self.rearrange()

    @work(thread=True, group="read-archived")
    def read_archived(self, run_ids: list[str]) -> None:
        assert self.feed is not None
        tails = self.feed.tails(run_ids)
        self.app.call_from_thread(self.archived_read, run_ids, tails, True)

    def archived_read(self, run_ids: list[str], tails: dict[str, list[dict]], show: bool = False) -> None:
        """Keep archived runs' output for their panes: older than anything the feed brought meanwhile."""
        self.unread.difference_update(run_ids)
        for run_id, events in tails.items():
            self.unshown[run_id] = deque([*events, *self.unshown.get(run_id, ())], maxlen=TAIL_LINES)
        if show:
            self.reading = False
            self.action_toggle_archive()

    def action_sort(self) -> None:
        self.view = self.view.next_sort()
        self.rearrange()

    def action_filter(self) -> None:
        filter_input = self.filter_input()
        filter_input.value = " ".join(self.view.words)
        filter_input.display = True
        filter_input.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self.view.with_filter(event.value) != self.view:
            self.view = self.view.with_filter(event.value)
            self.rearrange()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.close_filter()

    def action_clear_filter(self) -> None:
        self.view = self.view.with_filter("")
        self.close_filter()
        self.rearrange()

    def close_filter(self) -> None:
        """Hide the filter's input (the top bar keeps saying what it filters) and give the keys back to the runs."""
        for found in self.query("#filter"):
            found.display = False
        if self.list_mode:
            self.run_list().focus()
        else:
            panes = self.shown_panes()
            self.set_focus(panes[0] if panes else None)

    def action_toggle_list(self) -> None:
        current = self.focused_run_id()
        self.list_mode = not self.list_mode
        run_list = self.run_list()
        self.list_layout()
        if self.list_mode:
            self.refresh_list()
            run_list.highlight_run(current)
            run_list.focus()
        self.rearrange()
        if not self.list_mode and current and self.pane(current) is not None and self.pane(current).display:
            self.set_focus(self.pane(current))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "run-list" and self.list_mode and self.list_beside():
            self.rearrange()
        self.refresh_bindings()  # which run keys apply depends on the highlighted run

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "run-list" and event.option.id:
            self.app.open_review(event.option.id)

    def notice_text(self, width: int) -> str:
        """The notice, with the key that hides it at the right of the first line that has room for it (every
        line of the notice keeps its full width: nothing of it is wrapped or cut to make room)."""
        key = self.key_of("fleet.dismiss", "x")
        hint, room = f"{key} hides this", width - 3  # the bar's left border and the notice's padding
        lines = self.notice.splitlines()
        for index, line in enumerate(lines):
            gap = room - len(line) - len(hint)
            if gap >= 2:
                lines[index] = f"{escape(line)}{' ' * gap}[$text-muted][b]{escape(key)}[/b] hides this[/]"
                return "\n".join(lines if index == len(lines) - 1 else [*lines[:index + 1],
                                                                       *map(escape, lines[index + 1:])])
        return escape(self.notice) + f"  [$text-muted]({escape(key)} hides this)[/]"

    def action_dismiss_notice(self) -> None:
        for bar in self.query("#notice-bar"):
            bar.remove()
        self.relayout()
