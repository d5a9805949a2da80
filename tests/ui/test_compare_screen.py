"""The compare screen (b): the focused run's group side by side, ranked on evidence; enter chooses the candidate
under the cursor after asking, accepting it and rejecting the others. And the new-runs dialog's number of runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from orchestra.core.fleet import Fleet
from orchestra.core.fleet.compare import CHOSEN_REASON
from orchestra.ui.app import OrchestraApp
from orchestra.ui.compare_screen import CompareScreen
from orchestra.ui.dialogs import ConfirmDialog, NewRunDialog
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """The UI fixture's fleet with r2 (green) and r3 (a failed boundary, a stale check) started as one group."""
    fleet = build_fleet(tmp_path)
    for run_id in ("r2", "r3"):
        fleet.store.update(run_id, lambda run: setattr(run, "group", "g2"))
    return fleet


def rows(app: OrchestraApp) -> list[list[str]]:
    table = app.screen.query_one("#candidates", DataTable)
    return [list(map(str, table.get_row_at(index))) for index in range(table.row_count)]


async def open_compare(app: OrchestraApp, pilot, run_id: str) -> None:
    app.screen.query_one(f"#run-{run_id}").focus()
    await pilot.press("b")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and len(rows(app)) == 2, "the comparison")


async def test_b_shows_the_group_ranked_on_evidence_and_why_one_is_not_ready(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(140, 36)) as pilot:
        await open_compare(app, pilot, "r3")  # any run of the group opens it
        assert [row[:2] for row in rows(app)] == [["1", "r2"], ["2", "r3"]]
        assert rows(app)[0][4] == "3 green" and rows(app)[1][4].startswith("✗ boundary")
        why = app.screen.query_one("#why", Static)
        assert "r2 (fixer) is ready" in str(why.render())
        await pilot.press("down")
        await wait_for(pilot, lambda: "r3 (tester) is not ready" in str(why.render()), "r3's reasons")
        assert "boundary failed: README.md" in str(why.render())


async def test_enter_asks_then_accepts_the_candidate_and_rejects_the_others(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(140, 36)) as pilot:
        await open_compare(app, pilot, "r2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "r3 are rejected" in app.screen.detail
        await pilot.press("n")  # asked, refused: nothing happens
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), "the comparison again")
        assert fleet.ledger.last() is None
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: fleet.store.load("r3").state == "rejected", "r3 to be rejected")
        await wait_for(pilot, lambda: any("Chose r2" in n.message for n in app._notifications), "the toast")
    assert fleet.store.load("r2").state == "accepted"
    assert fleet.ledger.last()["reason"] == CHOSEN_REASON.format(run="r2")


async def test_a_run_started_alone_has_nothing_to_compare(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one("#run-r1").focus()
        await pilot.press("b")
        await wait_for(pilot, lambda: any("started alone" in n.message for n in app._notifications), "the reason")
        assert not isinstance(app.screen, CompareScreen)


@pytest.mark.parametrize("typed, count", [("3", 3), ("", None)])
async def test_the_new_runs_dialog_asks_how_many_runs(fleet: Fleet, typed: str, count: int | None) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    answers: list = []
    app.start_runs = answers.append  # what the dialog answers, not the runs it would start
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunDialog), "the dialog")
        dialog = app.screen
        dialog.query_one("#count", Input).value = typed
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: answers, "the answer")
    assert answers[0].count == count and answers[0].spec == "fix-mean"


async def test_the_new_runs_dialog_refuses_a_number_of_runs_out_of_range(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunDialog), "the dialog")
        dialog = app.screen
        dialog.query_one("#count", Input).value = "40"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("number of runs is 1 to 16" in n.message for n in app._notifications),
                       "the warning")
        assert app.screen is dialog
