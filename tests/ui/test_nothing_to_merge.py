"""Accepting a run whose change the target already holds says "nothing to merge" in the UI (issue 11, defect 7)."""

from __future__ import annotations

from pathlib import Path

from orchestra.ui.app import OrchestraApp
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import wait_settled
from tests.core.test_decisions import ACTOR, fix_fleet
from tests.ui.waiting import wait_for


async def test_accepting_a_change_already_on_the_target_says_nothing_to_merge(repo: Path,
                                                                                 make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    first, second = (wait_settled(fleet, run.id) for run in fleet.spawn("fix", ["coder", "coder"]))
    fleet.accept(first.id, actor=ACTOR)
    tip = git(repo, "rev-parse", "main")
    app = OrchestraApp(fleet, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one(f"#run-{second.id}").focus()
        await pilot.press("A")  # accept now: no question first
        await wait_for(pilot, lambda: any("Nothing to merge" in str(n.message) for n in app._notifications),
                       "the nothing-to-merge notice")
    assert git(repo, "rev-parse", "main") == tip  # no empty merge
    assert fleet.get(second.id).state == "review"
