"""Best-of-N in the UI (`b` on a run, or "Compare" in the palette): the candidates of the focused run's group
side by side, ranked on evidence (gates, then findings, then diff size), with what keeps each from being
ready; `enter` chooses the one under the cursor: it is accepted and the others are rejected with "another
candidate chosen: rN", as `orchestra compare GROUP --choose RUN` does.

The comparison is computed from the runs the app already holds, again whenever one of them changes; the
choice is carried out off the UI's thread."""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from orchestra.core.base.errors import OrchestraError
from orchestra.core.fleet.compare import COLUMNS, Candidate, Comparison, choose, compare_runs
from orchestra.core.fleet.fleet import Fleet
from orchestra.core.policy import readiness
from orchestra.core.runs.run import Run
from orchestra.ui.dialogs import SHEET_CSS
from orchestra.ui.key_bar import KeyBar

HEADINGS = {"rank": "#", "same": "same tree"}
EXPLAINED = ("Ranked on evidence: failed gates, then gates not yet green, then findings (P0 first), then diff "
             "size. A review verdict is one gate among the others.")


class CompareScreen(ModalScreen[None]):
    """One group's candidates; choose the one under the cursor."""

    DEFAULT_CSS = SHEET_CSS.format(name="CompareScreen", width=140) + """
    CompareScreen #explained { color: $text-muted; margin-bottom: 1; }
    CompareScreen #candidates { height: 1fr; }
    CompareScreen #why { height: auto; max-height: 8; }
    """
    BINDINGS = [
        Binding("enter", "choose", "Choose", id="compare.choose", priority=True,
                tooltip="Accept the candidate under the cursor and reject the group's others (asks first)"),
        Binding("escape,q", "close", "Close", id="compare.close", tooltip="Close the comparison", priority=True),
    ]
    AUTO_FOCUS = "#candidates"
    FOLLOWS_RUNS = True  # the app calls runs_changed when runs change on disk

    def __init__(self, fleet: Fleet, runs: list[Run], group: str) -> None:
        super().__init__()
        self.fleet = fleet
        self.group = group
        self.comparison: Comparison | None = None
        self.problem = ""
        try:
            self.comparison = compare_runs(runs, group, time.time())
        except OrchestraError as error:
            self.problem = str(error)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="title", classes="title", markup=False)
            yield Static(EXPLAINED, id="explained", markup=False)
            yield DataTable(id="candidates", cursor_type="row", zebra_stripes=True)
            yield Static("", id="why", markup=False)
        yield KeyBar(palette=False)

    def on_mount(self) -> None:
        self.query_one("#candidates", DataTable).add_columns(*(HEADINGS.get(c, c) for c in COLUMNS))
        self.show()

    def runs_changed(self, runs: list[Run]) -> None:
        """Compare again when a run of the group changed."""
        if self.comparison and any(run.id in self.ids() for run in runs):
            self.comparison = compare_runs(list(self.app.runs.values()), self.group, time.time())
            self.show()

    def ids(self) -> set[str]:
        return {c.run.id for c in self.comparison.candidates} if self.comparison else set()

    def show(self) -> None:
        title = self.query_one("#title", Label)
        found = self.comparison
        if found is None:
            title.update("Compare")
            self.query_one("#why", Static).update(self.problem)
            return
        chosen = found.chosen
        title.update(f"Compare group {found.group} · {found.spec or 'task'} · {len(found.candidates)} candidates"
                     + (f" · {chosen.id} chosen" if chosen else ""))
        table = self.query_one("#candidates", DataTable)
        row = table.cursor_row
        table.clear()
        colours = self.app.theme_variables  # the theme's colours: Rich text takes no $variables
        for candidate in found.candidates:
            cells = candidate.cells()
            table.add_row(*(Text(cells[c], no_wrap=True, overflow="ellipsis",
                                 style=colours.get(tone_of(candidate, c), "")) for c in COLUMNS))
        table.move_cursor(row=min(max(row, 0), len(found.candidates) - 1), animate=False)
        self.explain()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self.explain()

    def under_cursor(self) -> Candidate | None:
        if self.comparison is None:
            return None
        row = self.query_one("#candidates", DataTable).cursor_row
        return self.comparison.candidates[row] if 0 <= row < len(self.comparison.candidates) else None

    def explain(self) -> None:
        """Under the table: why the highlighted candidate is not ready, or that it is."""
        candidate = self.under_cursor()
        if candidate is None:
            return
        run = candidate.run
        reasons = readiness(run).reasons
        text = (f"{run.id} ({run.agent}) is {run.state}." if run.state != "review" else
                f"{run.id} ({run.agent}) is ready: enter accepts it and rejects the others." if not reasons else
                f"{run.id} ({run.agent}) is not ready:\n" + "\n".join(f"  • {reason}" for reason in reasons[:6]))
        self.query_one("#why", Static).update(text)

    def action_choose(self) -> None:
        candidate, found = self.under_cursor(), self.comparison
        if candidate is None or found is None:
            return
        if found.chosen is not None:
            self.notify(f"Group {found.group} is decided: {found.chosen.id} was chosen.", severity="warning")
            return
        others = [c.run.id for c in found.open if c.run.id != candidate.run.id]
        ready = candidate.ready
        from orchestra.ui.dialogs import ConfirmDialog
        detail = (f"{candidate.run.id} ({candidate.run.agent}) is merged into {candidate.run.target}"
                  + (f"; {', '.join(others)} are rejected with \"another candidate chosen: {candidate.run.id}\"."
                     if others else ".")
                  + ("" if ready else "\n\nIt is NOT ready; the ledger records a forced accept and why."))
        self.app.push_screen(ConfirmDialog(f"Choose {candidate.run.id}?", detail, "Choose"),
                             lambda yes: yes and self.carry_out(candidate.run.id, force=not ready))

    @work(thread=True, exclusive=True, group="compare-choose")
    def carry_out(self, run_id: str, force: bool) -> None:
        from orchestra.core.git.actor import current_actor
        try:
            done = choose(self.fleet, self.group, run_id, current_actor(self.fleet.repo.root), force=force)
        except OrchestraError as error:
            self.app.call_from_thread(self.notify, str(error), title="choose refused", severity="error",
                                      timeout=12, markup=False)
            return
        text = (f"Approved {run_id}: it merges when the approval rules are met; the others wait." if not done.merged
                else f"Chose {run_id}: merged into {done.chosen.target}"
                + (f"; rejected {', '.join(run.id for run in done.rejected)}" if done.rejected else ""))
        self.app.call_from_thread(self.notify, text, timeout=8, markup=False)

    def action_close(self) -> None:
        if self.is_current:
            self.dismiss(None)


def tone_of(candidate: Candidate, column: str) -> str:
    """The theme colour of the columns that carry the verdict (gates, findings); "" for the others."""
    if column == "gates":
        return "success" if candidate.ready else "error" if candidate.failed else "warning"
    if column == "findings" and any(candidate.findings.get(p) for p in ("P0", "P1")):
        return "error"
    return ""
