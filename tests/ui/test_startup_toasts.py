"""Start-up is quiet: runs already in review or failed are shown in their panes, not announced."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestra.core.fleet import Fleet
from orchestra.ui.app import INFO_TIMEOUT, OrchestraApp
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


def fleet_of_four_in_review(tmp_path: Path) -> Fleet:
    fleet = build_fleet(tmp_path)
    for run in fleet.store.list():
        fleet.store.save(dataclasses.replace(run, state="review", message=""))
    return fleet


def set_state(fleet: Fleet, state: str) -> None:
    for run in fleet.store.list():
        fleet.store.save(dataclasses.replace(run, state=state))


async def test_a_fleet_of_four_runs_in_review_opens_without_toasts(tmp_path: Path) -> None:
    fleet = fleet_of_four_in_review(tmp_path)
    # The worst case: the first read saw them still working, and they reached review just after it, before
    # the watch started; the catch-up then sees four changes.
    set_state(fleet, "working")
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=True)
    read_first = app.feed.initial

    def initial_then_finish(runs):
        updates = read_first(runs)
        set_state(fleet, "review")
        return updates

    app.feed.initial = initial_then_finish
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: {run.state for run in app.runs.values()} == {"review"},
                       "the catch-up to show every run in review")
        await pilot.pause()
        assert not list(app._notifications)
        # A change after start is still announced, briefly.
        run = fleet.store.load("r1")
        fleet.store.save(dataclasses.replace(run, state="failed", message="the agent exited with status 1"))
        await wait_for(pilot, lambda: list(app._notifications), "r1's failure to be announced", timeout=15)
        assert "r1" in list(app._notifications)[0].message


async def test_announcements_are_short(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.announce(dataclasses.replace(app.runs["r1"], state="review"))
        await wait_for(pilot, lambda: list(app._notifications), "the announcement")
        toast = list(app._notifications)[0]
    assert toast.timeout <= INFO_TIMEOUT <= 4
