"""The fleet's numbers in the UI: `orchestra stats` over the whole ledger, read off the UI's thread."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from orchestra.core.fleet.fleet import Fleet
from orchestra.core.fleet.stats import fleet_stats, stats_lines
from orchestra.core.ledger.fields import decode_decisions
from orchestra.ui.dialogs import SHEET_CSS
from orchestra.ui.key_bar import KeyBar


class StatsScreen(ModalScreen[None]):
    """Outcomes per agent and per spec (accept rate, rework, first try, escaped, the conductor's time, cost)."""

    DEFAULT_CSS = SHEET_CSS.format(name="StatsScreen", width=120) + """
    StatsScreen .title { margin-bottom: 1; }
    StatsScreen #figures { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close", id="stats.close", tooltip="Close the stats", priority=True)]
    AUTO_FOCUS = "#figures"  # arrows and page keys scroll the figures

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Stats: every decision in the ledger, per agent and per spec", classes="title")
            with VerticalScroll(id="figures"):
                yield Static("Reading the ledger…", id="table")
        yield KeyBar(palette=False)

    def on_mount(self) -> None:
        self.read()

    @work(thread=True, exclusive=True, group="stats")
    def read(self) -> None:
        """Read and count the ledger off the UI's thread: a large one takes a second."""
        try:
            entries, unreadable = decode_decisions(self.fleet.ledger.lines())
            lines = stats_lines(fleet_stats(entries))
            if unreadable:
                lines.append(f"{unreadable} lines of the ledger could not be read and were left out: "
                             "`orchestra ledger verify` says why.")
        except Exception as error:  # noqa: BLE001 -- shown on the screen, which stays usable
            lines = [f"The ledger could not be read: {error}"]
        self.app.call_from_thread(self.show, "\n".join(lines))

    def show(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#table", Static).update(Content(text))  # the figures as they are, never markup

    def action_close(self) -> None:
        if self.is_current:
            self.dismiss(None)
