"""Every decision in the ledger, newest first, filterable; enter shows one's evidence, z reverts its run.

The ledger is read off the UI's thread and read again whenever its file changes while the screen is open, so
a decision taken meanwhile (a revert from here, an accept in another terminal) appears."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label
from textual.worker import get_current_worker

from orchestra.core.fleet.fleet import Fleet
from orchestra.core.ledger.history import HistoryFilter, HistoryRow, history_rows
from orchestra.core.runs.lifecycle import allowed, refusal
from orchestra.ui.key_bar import KeyBar

# (key, heading, the width it may shrink to when the table does not fit; None: never shrinks)
COLUMNS = (("seq", "#", None), ("time", "time", None), ("action", "action", None), ("run", "run", None),
           ("spec", "spec", 6), ("agent", "agent", 6), ("actor", "actor", 8), ("evidence", "evidence", 8))
WIDEST = {"spec": 24, "agent": 16, "actor": 32, "evidence": 28}  # a longer value ends in …
ACTION_TONE = {"accept": "success", "accept (auto)": "success", "reject": "text-muted", "revert": "warning",
               "revoke (demoted)": "warning", "redirect": "accent", "approve": "primary"}
KEY_RANKING = ("history.open", "history.revert", "history.filter", "history.close")


class HistoryScreen(ModalScreen[None]):
    """The ledger's entries in a table; the filter narrows it as it is typed."""

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; background: $surface; }
    HistoryScreen #title { height: 1; width: 1fr; background: $panel; padding: 0 1; text-style: bold;
                           text-wrap: nowrap; text-overflow: ellipsis; }
    HistoryScreen #filter { height: 1; border: none; padding: 0 1; background: $boost; }
    HistoryScreen #entries { height: 1fr; scrollbar-size-vertical: 1; }
    """
    BINDINGS = [
        # Priority: enter in the filter shows the table; on a row it opens the entry (not DataTable's select).
        Binding("enter", "open_entry", "Evidence", id="history.open", priority=True,
                tooltip="Show the entry's evidence: gates with their trees, diff hash, review, signature"),
        Binding("z", "revert", "Revert", id="history.revert",
                tooltip="Undo the merge of the accept under the cursor with a revert commit (asks why)"),
        Binding("slash", "filter", "Filter", id="history.filter",
                tooltip="Filter: words, or spec:X agent:X actor:X action:X run:X (esc clears)"),
        Binding("escape,q", "close", "Close", id="history.close",
                tooltip="Close the history (in the filter, esc clears it first)"),
    ]
    AUTO_FOCUS = "#entries"

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self.rows: list[HistoryRow] = []
        self.shown: list[HistoryRow] = []
        self.filter = HistoryFilter()
        self.problem: str | None = None
        self.stop_following = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield Label("History: reading the ledger…", id="title")
        yield Input(placeholder="filter: words, or spec: agent: actor: action: run:   (/ here, esc clears)",
                    id="filter")
        yield DataTable(id="entries", cursor_type="row", zebra_stripes=True)
        yield KeyBar(palette=False, ranking=KEY_RANKING)

    def on_mount(self) -> None:
        self.read(follow=True)

    def on_unmount(self) -> None:
        self.stop_following.set()

    # -- reading -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="history-read")
    def read(self, follow: bool = False) -> None:
        """Read the ledger off the UI's thread (a large one takes a while); then follow its file, once."""
        path, rows, problem = None, [], None
        try:
            path = self.fleet.ledger.path
            rows, unreadable = history_rows(self.fleet.ledger.lines())
            if unreadable:
                problem = f"{unreadable} unreadable lines left out: `orchestra ledger verify` says why"
        except Exception as error:  # noqa: BLE001 -- shown on the screen, which stays usable
            problem = f"The ledger could not be read: {error}"
        if get_current_worker().is_cancelled:
            return  # a later read shows the ledger as it is now
        self.app.call_from_thread(self.show_rows, rows, problem)
        if follow and path is not None:
            self.app.call_from_thread(self.follow, path)

    @work(exclusive=True, group="history-follow")
    async def follow(self, ledger: Path) -> None:
        """Read again whenever the ledger's file changes while the screen is open."""
        from watchfiles import awatch
        if not ledger.parent.is_dir():
            return
        async for _changes in awatch(ledger.parent, watch_filter=lambda _change, path: Path(path).name == ledger.name,
                                     recursive=False, debounce=200, stop_event=self.stop_following):
            self.read()

    def show_rows(self, rows: list[HistoryRow], problem: str | None) -> None:
        if self.is_attached:
            self.rows, self.problem = rows, problem
            self.fill()

    # -- the table ---------------------------------------------------------------------------
    def fill(self) -> None:
        """Show the rows the filter passes, in columns that fit; the cursor stays on its entry."""
        table = self.query_one("#entries", DataTable)
        under_cursor = self.row_under_cursor()
        self.shown = [row for row in self.rows if self.filter.matches(row)] if self.filter else list(self.rows)
        table.clear(columns=True)
        width = table.size.width or self.app.size.width
        scrolls = len(self.shown) >= (table.size.height or self.app.size.height)  # a scrollbar takes a column
        widths = fit_widths(self.shown, max(20, width - scrolls))
        for key, heading, _shrinks in COLUMNS:
            table.add_column(heading, key=key, width=widths[key])
        table.add_rows([self.cells(row) for row in self.shown])
        positions = [row.position for row in self.shown]
        if under_cursor is not None and under_cursor.position in positions:  # read again: the same entry
            table.move_cursor(row=positions.index(under_cursor.position), animate=False)
        self.query_one("#title", Label).update(self.title_text())

    def cells(self, row: HistoryRow) -> list[Text]:
        """The row's cells as plain text (a DataTable reads a str cell as markup: these come from the ledger)."""
        variables = self.app.theme_variables
        tone = ACTION_TONE.get(row.action) or ("" if row.entry.get("run") else "text-muted")
        evidence = "error" if "✗" in row.evidence else "warning" if "stale" in row.evidence else ""
        styles = {"action": variables.get(tone, ""), "evidence": variables.get(evidence, "")}
        return [Text(getattr(row, key), style=styles.get(key, ""), no_wrap=True, overflow="ellipsis",
                     justify="right" if key == "seq" else "left") for key, _heading, _shrinks in COLUMNS]

    def title_text(self) -> str:
        if not self.rows and self.problem:
            return f"History: {self.problem}"
        if not self.rows:
            count = "no entries yet: accepts, rejects, redirects and reverts are recorded here"
        elif self.filter:
            count = f"{len(self.shown)} of {len(self.rows)} entries match"
        else:
            count = f"{len(self.rows)} entries, newest first"
        return f"History: {count}" + (f" · {self.problem}" if self.problem else "")

    def row_under_cursor(self) -> HistoryRow | None:
        table = self.query_one("#entries", DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_resize(self) -> None:
        if self.rows:
            self.call_after_refresh(self.fill)  # the columns fit the new width

    # -- the filter --------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        typed = HistoryFilter.parse(event.value)
        if typed != self.filter:
            self.filter = typed
            self.fill()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_close(self) -> None:
        """In the filter: clear it and go back to the table; elsewhere, close the history."""
        filter_input = self.query_one("#filter", Input)
        if filter_input.has_focus:
            filter_input.value = ""
            self.query_one("#entries", DataTable).focus()
        elif self.is_current:
            self.dismiss(None)

    # -- an entry ----------------------------------------------------------------------------
    def action_open_entry(self) -> None:
        table = self.query_one("#entries", DataTable)
        if not table.has_focus:
            table.focus()
            return
        self.open_row(self.row_under_cursor())

    @on(DataTable.RowSelected, "#entries")
    def row_clicked(self) -> None:
        self.open_row(self.row_under_cursor())

    def open_row(self, row: HistoryRow | None) -> None:
        if row is None:
            return
        from orchestra.ui.history_detail import HistoryDetail
        self.app.push_screen(HistoryDetail(row), lambda revert: revert and self.revert(row))

    def action_revert(self) -> None:
        row = self.row_under_cursor()
        if row is not None:
            self.revert(row)

    def revert(self, row: HistoryRow) -> None:
        """Revert the run the accept entry row accepted, when it still can be; otherwise say why not."""
        if not row.run:
            self.notify(f"Only an accepted, unreverted run can be reverted: entry #{row.seq or '?'} records a "
                        f"{row.action}, of no run.", severity="warning", timeout=6)
            return
        self.check_revert(row)

    @work(thread=True, exclusive=True, group="history-revert")
    def check_revert(self, row: HistoryRow) -> None:
        """Read the run as it is now (off the UI's thread) and ask why, or say why it cannot be reverted."""
        try:
            run = self.fleet.get(row.run)
        except Exception as error:  # noqa: BLE001 -- a run gone or unreadable: said, nothing changes
            self.app.call_from_thread(self.notify, f"Run {row.run} cannot be reverted: {error}",
                                      severity="warning", timeout=8)
            return
        if not allowed("revert", run):
            self.app.call_from_thread(self.notify, refusal("revert", run), severity="warning", timeout=8)
        elif row.entry.get("action") != "accept":
            self.app.call_from_thread(self.notify, f"Entry #{row.seq or '?'} records a {row.action} of {row.run}: "
                                      "z on its accept entry reverts it.", severity="warning", timeout=6)
        else:
            self.app.call_from_thread(self.ask_revert, row.run)

    def ask_revert(self, run_id: str) -> None:
        """The app's revert: it asks why, then reverts; the entry it records appears here as the file changes."""
        if not allowed("revert", self.app.runs.get(run_id)):
            self.notify(f"The fleet has not caught up with run {run_id} yet: press z again in a moment.",
                        severity="warning", timeout=5)
            return
        self.app.action_revert(run_id)


def fit_widths(rows: list[HistoryRow], width: int) -> dict[str, int]:
    """Each column's width: its longest value (capped), the shrinkable ones narrowed, widest first, until the
    table fits width (each column is padded by one cell on each side)."""
    widths = {key: max([len(heading), *(cell_len(getattr(row, key)) for row in rows)]) for key, heading, _s in COLUMNS}
    widths = {key: min(value, WIDEST.get(key, value)) for key, value in widths.items()}
    floors = {key: shrinks for key, _heading, shrinks in COLUMNS if shrinks is not None}
    room = width - 2 * len(COLUMNS)
    while sum(widths.values()) > room:
        key = max(floors, key=lambda name: widths[name] - floors[name])
        if widths[key] <= floors[key]:
            break
        widths[key] -= 1
    return widths
