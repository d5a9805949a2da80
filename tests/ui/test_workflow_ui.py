"""A workflow in the UI: the pane says which stage a run is at and what it waits for; `a` on a plan waiting
for approval asks to approve it (showing the plan), not to merge; the review's Spec tab shows the stages and
the plan; `e` is available only while a plan waits."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from orchestra.core.fleet import Fleet
from orchestra.core.runs.workflow import plan_path
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import ConfirmDialog
from orchestra.ui.review_screen import ReviewScreen
from orchestra.ui.run_pane import RunPane
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for

MESSAGE = ("1/4 plan: planner: the plan waits for your approval: accept approves it and the next stage starts; "
           "redirect asks for another attempt")


def stages() -> list[dict]:
    return [{"name": name, "role": role, "agent": agent, "config": {"name": agent, "kind": "shell", "role": role},
             "approve": name == "plan", "on_reject": "retry"}
            for name, role, agent in (("plan", "plan", "planner"), ("implement", "code", "fixer"),
                                      ("tests", "tests", "pinner"), ("docs", "docs", "scribe"))]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """The UI fixture's fleet, with r2 a workflow run whose plan waits for approval."""
    fleet = build_fleet(tmp_path)

    def waiting(run) -> None:
        run.workflow = {"name": "full", "at": 0, "status": "approval", "stages": stages(), "redirects_at": 0,
                        "log": [], "plan": None}
        run.message, run.gates = MESSAGE, {}
    fleet.store.update("r2", waiting)
    plan_path(fleet.store.run_dir("r2")).write_text("# Plan\n\n1. fix mean() in calc/stats.py\n2. add a test\n")
    return fleet


async def test_the_pane_says_the_plan_waits_and_a_asks_to_approve_it(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        pane = app.screen.query_one("#run-r2", RunPane)
        assert any("the plan waits for your approval" in line.plain for line in pane.message_lines(120))
        pane.focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert app.screen.title_text == "Approve the plan of r2?"
        assert "1. fix mean() in calc/stats.py" in app.screen.detail
        assert "Stage 2/4 (implement, by fixer) starts with this plan." in app.screen.detail
        assert "Merge" not in app.screen.detail and "forced" not in app.screen.detail
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), "the dialog to close")
    assert fleet.ledger.last() is None


async def test_the_review_shows_the_stages_and_the_plan(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        app.screen.query_one("#run-r2").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review")
        text = str(app.screen.query_one("#spec-detail", Static).render())
        assert "Workflow full" in text and "1/4 plan: planner · approval" in text
        assert "2. implement: fixer (code)" in text and "4. docs: scribe (docs)" in text
        assert "waits for your approval: a approves it, e edits it" in text
        assert "2. add a test" in text


async def test_e_is_only_for_a_plan_that_waits(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        app.screen.query_one("#run-r2").focus()
        await pilot.pause()
        assert app.check_action("plan", ()) is True
        app.screen.query_one("#run-r3").focus()
        await pilot.pause()
        assert app.check_action("plan", ()) is None
        await pilot.press("e")
        await wait_for(pilot, lambda: any("no plan waiting for your approval" in n.message
                                          for n in app._notifications), "the reason")
