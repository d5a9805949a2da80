"""The Autonomy view (G): the score's pairs with their level, granter, cap and record; g grants and r revokes the
pair under the cursor, asking why, recorded in the ledger under the conductor's name."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Static

from orchestra.core.fleet.autonomy import Autonomy
from orchestra.ui.app import OrchestraApp
from orchestra.ui.autonomy_screen import AutonomyScreen
from orchestra.ui.dialogs import TextPrompt
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


def cell_rows(app: OrchestraApp) -> list[list[str]]:
    table = app.screen.query_one("#pairs", DataTable)
    return [list(map(str, table.get_row_at(index))) for index in range(table.row_count)]


async def test_g_grants_the_pair_under_the_cursor_and_r_revokes_it(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    pairs = [(s.spec, s.agent) for s in Autonomy(fleet).standings()]
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("G")
        await wait_for(pilot, lambda: isinstance(app.screen, AutonomyScreen) and len(cell_rows(app)) == len(pairs),
                       "the pairs")
        assert [tuple(row[:3]) for row in cell_rows(app)] == [(spec, agent, "manual") for spec, agent in pairs]
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the question why")
        app.screen.query_one(Input).value = "a clean record"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AutonomyScreen) and cell_rows(app)[0][2] == "auto",
                       "the pair at auto")
        entry = fleet.ledger.entries()[-1]
        assert (entry["action"], (entry["spec"], entry["agent"]), entry["reason"]) == ("grant", pairs[0],
                                                                                        "a clean record")
        assert cell_rows(app)[0][3] == entry["actor"].partition(" <")[0]
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the question why")
        await pilot.press("escape")  # cancelled: nothing is written
        await wait_for(pilot, lambda: isinstance(app.screen, AutonomyScreen), "the view again")
        assert fleet.ledger.entries()[-1]["action"] == "grant"
        await pilot.press("g")  # already auto: refused, said, nothing written
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the question why")
        await pilot.press("x", "enter")
        await wait_for(pilot, lambda: any("already has autonomy auto" in n.message for n in app._notifications),
                       "the refusal")
        assert [e["action"] for e in fleet.ledger.entries()].count("grant") == 1
        assert "No promotion suggested." in str(app.screen.query_one("#suggested", Static).render())
