"""Autonomy in the UI (`G`, or "Autonomy" in the palette): every spec and agent the score pairs, its level,
who granted it, the score's cap, the track record and a suggested promotion; `g` grants the pair under the
cursor, `r` revokes it, each asking why and recorded in the ledger under your name (as `orchestra autonomy`).

The ledger is read off the UI's thread; a grant or revoke is written off it too."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from orchestra.core.fleet.autonomy import Autonomy, Standing
from orchestra.core.fleet.fleet import Fleet
from orchestra.ui.dialogs import SHEET_CSS
from orchestra.ui.key_bar import KeyBar

HEADINGS = ("spec", "agent", "level", "set by", "cap", "record")  # set by: who last granted or revoked
EXPLAINED = ("auto: a ready run (gates green, an independent review approved, no P0/P1 finding, no approval "
             "rule) is accepted by policy, in the name of who granted it. A boundary violation, a secret, a P0 "
             "finding, a check failing after an automatic merge or a revert of one demotes the pair at once.")


class AutonomyScreen(ModalScreen[None]):
    """The pairs' standings; grant or revoke the one under the cursor."""

    DEFAULT_CSS = SHEET_CSS.format(name="AutonomyScreen", width=120) + """
    AutonomyScreen #explained { color: $text-muted; margin-bottom: 1; }
    AutonomyScreen #pairs { height: 1fr; }
    AutonomyScreen #suggested { color: $accent; height: auto; }
    """
    BINDINGS = [
        Binding("g", "grant", "Grant auto", id="autonomy.grant",
                tooltip="Give the pair under the cursor autonomy auto (asks why; recorded under your name)"),
        Binding("r", "revoke", "Revoke", id="autonomy.revoke",
                tooltip="Take the pair under the cursor back to manual (asks why; recorded under your name)"),
        Binding("escape,q", "close", "Close", id="autonomy.close", tooltip="Close the autonomy view", priority=True),
    ]
    AUTO_FOCUS = "#pairs"

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        self.standings: list[Standing] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Autonomy: granted by a named human, capped by the score", classes="title")
            yield Static(EXPLAINED, id="explained", markup=False)
            yield DataTable(id="pairs", cursor_type="row", zebra_stripes=True)
            yield Static("Reading the ledger…", id="suggested", markup=False)
        yield KeyBar(palette=False)

    def on_mount(self) -> None:
        self.query_one("#pairs", DataTable).add_columns(*HEADINGS)
        self.read()

    @work(thread=True, exclusive=True, group="autonomy")
    def read(self) -> None:
        try:
            standings, problem = Autonomy(self.fleet).standings(), ""
        except Exception as error:  # noqa: BLE001 -- shown on the screen, which stays usable
            standings, problem = [], f"The ledger could not be read: {error}"
        self.app.call_from_thread(self.show, standings, problem)

    def show(self, standings: list[Standing], problem: str) -> None:
        if not self.is_attached:
            return
        self.standings = standings
        table = self.query_one("#pairs", DataTable)
        row = table.cursor_row
        table.clear()
        for standing in standings:
            table.add_row(*(Text(cell, no_wrap=True, overflow="ellipsis") for cell in cells(standing)))
        if standings:
            table.move_cursor(row=min(row, len(standings) - 1), animate=False)
        suggested = [s for s in standings if s.suggest_promotion]
        text = problem or ("; ".join(f"promotion suggested for {s.spec}/{s.agent}: {s.streak} ready runs accepted "
                                     f"in a row ({', '.join(s.streak_runs[-8:])}; g grants it)" for s in suggested)
                           if suggested else "No promotion suggested." if standings
                           else "The score pairs no spec with an agent.")
        self.query_one("#suggested", Static).update(text)

    def under_cursor(self) -> Standing | None:
        row = self.query_one("#pairs", DataTable).cursor_row
        return self.standings[row] if 0 <= row < len(self.standings) else None

    def action_grant(self) -> None:
        self.change("grant")

    def action_revoke(self) -> None:
        self.change("revoke")

    def change(self, action: str) -> None:
        standing = self.under_cursor()
        if standing is None:
            return
        from orchestra.ui.dialogs import TextPrompt
        pair = f"{standing.spec}/{standing.agent}"
        title = (f"Grant autonomy auto to {pair}" if action == "grant" else f"Revoke the autonomy of {pair}")
        detail = ("Its ready runs will be accepted by policy, in your name. Why?" if action == "grant"
                  else "Its runs go back to a human's decision. Why?")
        self.app.push_screen(TextPrompt(title, detail, placeholder="the reason, recorded in the ledger"),
                             lambda reason: reason is not None and self.record(action, standing, reason))

    @work(thread=True, exclusive=True, group="autonomy-change")
    def record(self, action: str, standing: Standing, reason: str) -> None:
        from orchestra.core.base.errors import OrchestraError
        from orchestra.core.git.actor import current_actor
        autonomy = Autonomy(self.fleet)
        change = autonomy.grant if action == "grant" else autonomy.revoke
        try:
            actor = current_actor(self.fleet.repo.root)
            entry = change(standing.spec, standing.agent, actor, reason)
        except OrchestraError as error:
            self.app.call_from_thread(self.notify, str(error), severity="warning", timeout=8, markup=False)
            return
        done = "granted" if action == "grant" else "revoked"
        self.app.call_from_thread(self.notify, f"{standing.spec}/{standing.agent} is now {entry['level']}, {done} by "
                                  f"{actor}.", timeout=6, markup=False)
        self.read()

    def action_close(self) -> None:
        if self.is_current:
            self.dismiss(None)


def cells(standing: Standing) -> tuple[str, ...]:
    """A pair's row: spec, agent, the level that applies, who granted it, the score's cap, the record."""
    level = standing.level + (" (capped)" if standing.level != standing.granted else "")
    record = f"{standing.streak} in a row" + (" · promote?" if standing.suggest_promotion else "")
    granted_by = (standing.granted_by or "-").partition(" <")[0]  # the name: the ledger keeps the email
    return (standing.spec, standing.agent, level, granted_by, standing.cap, record)
