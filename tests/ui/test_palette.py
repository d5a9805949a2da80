"""The command palette offers the run actions of the screen it was opened on, and they act on that run."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.review_screen import ReviewScreen
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def offered(app: OrchestraApp) -> list[str]:
    """The prompts the open palette lists."""
    return [str(option.prompt) for option in app.screen.query_one("CommandList").options]


async def open_palette_and_type(app: OrchestraApp, pilot, text: str, expected: str) -> None:
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette to open")
    await pilot.press(*text)
    await wait_for(pilot, lambda: any(expected in prompt for prompt in offered(app)), f"{expected!r} to be offered")


async def test_the_palette_accepts_the_run_under_review(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_review("r2")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review screen")
        await open_palette_and_type(app, pilot, "accept", "Accept r2 (fixer)")
        await pilot.press("enter")
        await wait_for(pilot, lambda: fleet.ledger.last() is not None, "the accept to be recorded")
        await app.workers.wait_for_complete()
    assert fleet.ledger.last()["action"] == "accept" and fleet.ledger.last()["run"] == "r2"
    assert fleet.store.load("r2").state == "accepted"


async def test_the_palette_offers_the_focused_panes_actions_in_the_fleet(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#run-r3").focus()
        await pilot.pause()
        await open_palette_and_type(app, pilot, "reject", "Reject r3 (tester)")
        await pilot.press("enter")
        # Reject asks for a reason first, about the run the palette was opened on.
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextPrompt", "the reject prompt")
        assert "Reject r3" in app.screen.title_text
        await pilot.press(*"dup", "enter")
        await wait_for(pilot, lambda: fleet.ledger.last() is not None, "the reject to be recorded")
        await app.workers.wait_for_complete()
    assert fleet.ledger.last()["run"] == "r3" and fleet.store.load("r3").state == "rejected"


async def test_the_palette_does_not_offer_what_the_run_cannot_do(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#run-r2").focus()
        await pilot.pause()
        await open_palette_and_type(app, pilot, "r2", "Reject r2 (fixer)")
        assert not any("Stop r2" in prompt for prompt in offered(app))  # a run in review has no agent to stop


async def test_the_palette_integrates_a_parts_group_and_says_why_not(fleet: Fleet) -> None:
    """Integrate is offered on a part's run (not on other runs) and reaches the use-case, whose refusal is shown."""
    for run_id, part in (("r2", "calc"), ("r3", "tests")):
        fleet.store.update(run_id, lambda run, part=part: (setattr(run, "group", "g2"),
                                                           setattr(run, "part_of", {"spec": "fix-mean", "part": part})))
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(100, 24)) as pilot:
        app.screen.query_one("#run-r1").focus()
        await pilot.pause()
        await open_palette_and_type(app, pilot, "r1", "Reject r1")
        assert not any(prompt.startswith("Integrate") for prompt in offered(app))
        await pilot.press("escape")
        app.screen.query_one("#run-r2").focus()
        await pilot.pause()
        await open_palette_and_type(app, pilot, "integrate", "Integrate")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await wait_for(pilot, lambda: any("no longer in the score with parts" in str(n.message)
                                          for n in app._notifications), "the refusal")
