"""Dialogs fit the terminal and say which keys answer them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Button

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import AgentPicker, ConfirmDialog, NewRunDialog, TextPrompt
from orchestra.ui.key_bar import KeyBar
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def with_agents(fleet: Fleet, count: int) -> Fleet:
    """The fleet's score with count agents (its two, then copies of the first)."""
    first = fleet.score.agents[0]
    extra = tuple(replace(first, name=f"helper{n}") for n in range(count - len(fleet.score.agents)))
    fleet.score = replace(fleet.score, agents=fleet.score.agents + extra)
    return fleet


def with_specs(fleet: Fleet, count: int) -> Fleet:
    """The fleet's score with count specs (its one, then copies of it), as in the demo."""
    first = fleet.score.specs[0]
    extra = tuple(replace(first, id=f"spec{n}") for n in range(count - len(fleet.score.specs)))
    fleet.score = replace(fleet.score, specs=fleet.score.specs + extra)
    return fleet


def on_screen(app: OrchestraApp, widget) -> bool:
    """Whether the whole widget is drawn: inside the terminal and not clipped by its dialog."""
    region = widget.region
    return bool(region) and region.bottom <= app.size.height and region.height == widget.outer_size.height


def visible_rows(agents: AgentPicker) -> range:
    top = agents.scroll_offset.y
    return range(top, top + agents.scrollable_content_region.height)


async def open_new_runs(app: OrchestraApp, pilot) -> NewRunDialog:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunDialog), "the new-runs dialog")
    await pilot.pause()
    return app.screen


async def test_new_runs_fits_80x24_with_three_specs_and_five_agents(fleet: Fleet) -> None:
    app = OrchestraApp(with_specs(with_agents(fleet, 5), 3), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_new_runs(app, pilot)
        agents = dialog.query_one(AgentPicker)
        await wait_for(pilot, lambda: on_screen(app, dialog.query_one("#start", Button)), "Start to be on screen")
        assert on_screen(app, dialog.query_one("#cancel", Button))
        assert len(visible_rows(agents)) >= 5  # every agent shows


async def test_new_runs_with_twenty_agents_scrolls_the_list_and_keeps_the_buttons(fleet: Fleet) -> None:
    app = OrchestraApp(with_agents(fleet, 20), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_new_runs(app, pilot)
        agents = dialog.query_one(AgentPicker)
        await wait_for(pilot, lambda: on_screen(app, dialog.query_one("#start", Button)), "Start to be on screen")
        assert on_screen(app, dialog.query_one("#cancel", Button))
        agents.focus()
        for _ in range(19):
            await pilot.press("down")
        await wait_for(pilot, lambda: agents.highlighted == 19, "the cursor on the last agent")
        await wait_for(pilot, lambda: 19 in visible_rows(agents), "the last agent to scroll into view")
        assert on_screen(app, agents)
        assert "helper17" not in agents.selected  # the spec names only fixer and tester
        await pilot.press("space")  # the highlighted (last) agent is the one ticked
        await wait_for(pilot, lambda: "helper17" in agents.selected, "the last agent to be ticked")


async def test_a_reject_prompt_shows_its_own_keys_over_the_fleets(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#run-r2").focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the reject prompt")
        bar = app.screen.query_one(KeyBar)
        await wait_for(pilot, lambda: "Confirm" in bar.text.plain, "the prompt's keys")
        assert "⏎ Confirm" in bar.text.plain and "esc Cancel" in bar.text.plain
        assert "Accept" not in bar.text.plain and "palette" not in str(bar.render())
        # It is the line drawn at the bottom: the fleet's bar is covered.
        assert app.screen.get_widget_at(2, app.size.height - 1)[0] is bar


async def test_a_confirmation_shows_y_n_and_enter(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#run-r3").focus()
        await pilot.press("a")  # r3's gates are not all green: accept asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        bar = app.screen.query_one(KeyBar)
        await wait_for(pilot, lambda: "Yes" in bar.text.plain, "the confirmation's keys")
        assert "y Yes" in bar.text.plain and "n No" in bar.text.plain and "⏎ Choose" in bar.text.plain


async def test_new_runs_keeps_the_buttons_when_the_task_field_appears(fleet: Fleet) -> None:
    app = OrchestraApp(with_agents(fleet, 20), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_new_runs(app, pilot)
        await wait_for(pilot, lambda: on_screen(app, dialog.query_one("#start", Button)), "Start to be on screen")
        await pilot.press("down")  # "free-text task…": the task field takes rows
        await wait_for(pilot, lambda: dialog.query_one("#task").display, "the task field")
        await wait_for(pilot, lambda: on_screen(app, dialog.query_one("#task")), "the task field to be on screen")
        await wait_for(pilot, lambda: on_screen(app, dialog.query_one("#start", Button)), "Start to stay on screen")
        assert on_screen(app, dialog.query_one(AgentPicker))


def settings_with_a_host() -> None:
    from orchestra.core.settings import settings_path
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text('[[hosts]]\nname = "box"\nssh = "dev@box.example"\nslots = 2\n')


async def test_with_hosts_the_new_runs_dialog_picks_where_the_runs_go_and_fits_80x24(fleet: Fleet) -> None:
    from textual.widgets import Select
    settings_with_a_host()
    app = OrchestraApp(with_agents(fleet, 5), clock=lambda: CLOCK, watch=False)
    answers: list = []
    app.start_runs = answers.append  # what the dialog answers, not the runs it would start
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_new_runs(app, pilot)
        where = dialog.query_one("#host", Select)
        assert [label for label, _value in where._options][1:] == ["local", "box"]  # after "any host"
        for button in ("#start", "#cancel"):
            await wait_for(pilot, lambda b=button: on_screen(app, dialog.query_one(b, Button)), f"{button} on screen")
        assert where.region.right <= dialog.query_one("#cancel", Button).region.x
        where.value = "box"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: answers, "the answer")
    assert answers[0].host == "box"


async def test_without_other_hosts_the_new_runs_dialog_asks_nothing_of_hosts(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    answers: list = []
    app.start_runs = answers.append
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_new_runs(app, pilot)
        assert not dialog.query("#host")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: answers, "the answer")
    assert answers[0].host is None
