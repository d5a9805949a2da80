"""The fleet at scale: decided runs archived, a filter, a sort, the compact list, and groups."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.runs.run import Run
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import TextPrompt
from orchestra.ui.fleet_screen import FleetScreen
from orchestra.ui.run_list import RunList
from orchestra.ui.run_pane import RunPane
from tests.core.conftest import MakeFleet
from tests.core.helpers import fleet_in_review, wait_for, wait_settled
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for as wait_in_app

DECIDED = {"r5": ("accepted", None), "r6": ("accepted", None), "r7": ("rejected", "touches README"),
           "r8": ("rejected", None), "r9": ("accepted", None), "r10": ("rejected", "duplicate of r2")}


def add_run(fleet: Fleet, run_id: str, state: str, agent: str = "fixer", group: str | None = None,
            reason: str | None = None, events: tuple[str, ...] = ()) -> None:
    """A copy of r2 under another id, in state (decided with reason), in group."""
    template = fleet.store.load("r2")
    decision = {"action": "reject" if state == "rejected" else "accept", "reason": reason} if state in (
        "accepted", "rejected") else None
    run = dataclasses.replace(template, id=run_id, state=state, agent=agent, group=group, decision=decision,
                              created=template.created + int(run_id[1:]), branch=f"orchestra/fix-mean/{run_id}")
    fleet.store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    fleet.store.save(run)
    fleet.store.append_events(run_id, [{"type": "output", "text": line} for line in events])


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """The four fixture runs (working, review, review, failed) and six decided ones."""
    fleet = build_fleet(tmp_path)
    for run_id, (state, reason) in DECIDED.items():
        add_run(fleet, run_id, state, reason=reason, events=(f"{run_id} output",))
    return fleet


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


def shown(app: OrchestraApp) -> list[str]:
    return [pane.run.id for pane in app.screen.shown_panes()]


def topbar(app: OrchestraApp) -> str:
    return str(app.screen.query_one("#topbar").render())


async def test_decided_runs_leave_the_grid_and_one_key_shows_them(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert shown(app) == ["r1", "r2", "r3", "r4"]
        assert set(screen.made) == {"r1", "r2", "r3", "r4"}  # archived runs cost no pane
        assert "6 decided hidden · H shows" in topbar(app)

        await pilot.press("H")
        assert shown(app) == ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10"]
        assert "r7 output" in str(screen.pane("r7").render())  # their output was kept for when they show
        assert "6 decided hidden" not in topbar(app)

        await pilot.press("H")
        assert shown(app) == ["r1", "r2", "r3", "r4"]


async def test_a_run_that_is_decided_leaves_the_grid_and_the_focus_moves_on(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.screen.set_focus(app.screen.pane("r2"))
        accepted = dataclasses.replace(fleet.store.load("r2"), state="accepted")
        app.screen.show_runs([accepted], {}, CLOCK)
        await pilot.pause()
        assert shown(app) == ["r1", "r3", "r4"]
        assert app.screen.focused_run_id() == "r1"
        assert "7 decided hidden" in topbar(app)


async def test_the_filter_keeps_runs_whose_state_spec_or_agent_hold_every_word(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"review")
        assert shown(app) == ["r2", "r3"]
        await pilot.press("enter")  # keeps the filter, gives the keys back to the runs
        assert not app.screen.query_one("#filter").display
        assert app.screen.focused_run_id() == "r2"
        assert "filter “review”" in topbar(app)

        await pilot.press("slash", *"tester review")  # what was typed before is selected: typing replaces it
        assert shown(app) == ["r3"]  # every word must match
        await pilot.press("escape")
        assert shown(app) == ["r1", "r2", "r3", "r4"] and "filter" not in topbar(app)

        await pilot.press("slash", *"fix-mean fixer")
        assert shown(app) == ["r1", "r2"]
        await pilot.press("escape", "slash", *"nothing-like-this")
        assert shown(app) == []
        assert "No run matches “nothing-like-this”" in str(app.screen.query_one("#empty").render())


async def test_sort_by_state_puts_the_runs_that_need_you_first(fleet: Fleet) -> None:
    add_run(fleet, "r11", "waiting")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert shown(app) == ["r1", "r2", "r3", "r4", "r11"]
        await pilot.press("exclamation_mark")
        assert shown(app) == ["r11", "r2", "r3", "r4", "r1"]  # waiting, review, review, failed, working
        assert "needs-you first" in topbar(app)
        await pilot.press("exclamation_mark")
        assert shown(app) == ["r1", "r2", "r3", "r4", "r11"]


async def test_list_view_beside_the_pane_and_keys_act_on_the_highlighted_run(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        await pilot.press("v")
        screen = app.screen
        run_list = screen.query_one(RunList)
        assert run_list.display and run_list.has_focus
        assert [run_list.get_option_at_index(i).id for i in range(run_list.option_count)] == ["r1", "r2", "r3", "r4"]
        assert "fix-mean" in str(run_list.get_option_at_index(1).prompt)
        assert screen.focused_run_id() == "r1" and shown(app) == ["r1"]  # the highlighted run's pane beside

        await pilot.press("down", "j")
        assert screen.focused_run_id() == "r3" and shown(app) == ["r3"]
        assert screen.query_one("#run-r3").region.x > run_list.region.right - 1

        await pilot.press("r")  # reject acts on the highlighted run
        assert isinstance(app.screen, TextPrompt) and app.screen.title_text.startswith("Reject r3")
        await pilot.press("escape")
        await pilot.press("enter")  # and enter reviews it
        assert type(app.screen).__name__ == "ReviewScreen" and app.screen.run.id == "r3"
        await pilot.press("escape")
        assert app.screen is screen

        await pilot.press("v")
        assert not run_list.display and shown(app) == ["r1", "r2", "r3", "r4"]
        assert screen.focused_run_id() == "r3"


async def test_list_view_alone_at_a_narrow_terminal(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("v", "down")
        screen = app.screen
        assert screen.focused_run_id() == "r2" and shown(app) == []
        assert not screen.query_one("#fleet").display
        assert screen.query_one(RunList).region.width == 80


async def test_the_list_says_a_rejected_runs_reason(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("H", "v")
        run_list = app.screen.query_one(RunList)
        line = str(run_list.get_option(("r7")).prompt)
        assert "rejected" in line and "touches README" in line


async def test_a_reverted_run_says_so_in_its_pane_and_in_the_list(fleet: Fleet) -> None:
    fleet.store.set("r5", reverted={"id": "d9", "actor": "Ada <ada@example.test>", "time": "t", "commit": "c" * 40,
                                    "reason": "broke the build", "ledger_hash": "h" * 64})
    app = make_app(fleet)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        await pilot.press("H")
        pane = app.screen.pane("r5")
        assert pane.status_line().plain.startswith("↺ reverted")
        said = [line.plain for line in pane.message_lines(80)]
        assert said == ["reverted by Ada <ada@example.test>: broke the build"]
        await pilot.press("v")
        assert "↺ reverted" in str(app.screen.query_one(RunList).get_option("r5").prompt)


async def test_runs_started_together_are_shown_together_under_their_group(fleet: Fleet) -> None:
    add_run(fleet, "r11", "review", agent="fixer", group="g11")
    add_run(fleet, "r12", "working", agent="tester", group="g13")
    add_run(fleet, "r13", "review", agent="tester", group="g11")
    app = make_app(fleet)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert shown(app) == ["r1", "r2", "r3", "r4", "r11", "r13", "r12"]
        assert "group g11 · 2 runs" in app.screen.pane("r13").border_subtitle
        assert "group" not in app.screen.pane("r12").border_subtitle  # a run started alone has no group
        await pilot.press("exclamation_mark")  # sorted by state, the group stays together
        assert shown(app).index("r13") == shown(app).index("r11") + 1

        await pilot.press("v")
        run_list = app.screen.query_one(RunList)
        prompts = [str(run_list.get_option_at_index(i).prompt) for i in range(run_list.option_count)]
        heading = prompts.index("group g11 · 2 runs")
        assert run_list.get_option_at_index(heading).disabled
        assert [run_list.get_option_at_index(heading + i).id for i in (1, 2)] == ["r11", "r13"]


def test_one_spawn_makes_one_group_and_runs_json_shows_it(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    first, second = fleet.spawn("fix-mean")
    alone = fleet.spawn("fix-mean", ["fixer"])[0]
    try:
        assert first.group == second.group == f"g{first.id[1:]}"
        assert alone.group not in (None, first.group)
        assert fleet.get(second.id).summary_json()["group"] == first.group
    finally:
        for run in (first, second, alone):
            wait_settled(fleet, run.id)
            fleet.reject(run.id, "test clean-up")


def test_a_record_written_before_groups_loads_without_one(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    data = fleet.store.load("r2").to_json()
    data.pop("group")
    assert Run.from_json(data).group is None


async def test_first_paint_of_fifty_runs_makes_panes_only_for_the_shown_ones(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    for n in range(5, 51):
        add_run(fleet, f"r{n}", "accepted" if n <= 44 else "review")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        assert len(screen.query(RunPane)) == 10 and len(screen.made) == 10
        wait_for(lambda: "40 decided hidden" in topbar(app), timeout=1)


async def test_help_lists_every_fleet_key_and_the_bar_shows_the_most_useful(fleet: Fleet) -> None:
    from orchestra.ui.help_screen import describe_bindings
    from orchestra.ui.key_bar import KeyBar
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        ids = {row[0] for row in describe_bindings(app, app.screen)}
        assert {"fleet.archive", "fleet.filter", "fleet.sort", "fleet.list", "fleet.dismiss"} <= ids
        bar = str(app.screen.query_one(KeyBar).render())
        assert "/ Filter" in bar and "v List" in bar and "Sort" not in bar


async def test_collection_paused_for_the_start_resumes_once_the_first_frame_is_up(fleet: Fleet) -> None:
    """`orchestra` pauses the garbage collector while it starts (cli.main): the app must resume it, or a long
    session would never collect cyclic garbage."""
    import gc

    gc.disable()
    try:
        app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_in_app(pilot, gc.isenabled, "the collector resumed")
    finally:
        gc.enable()


def accepted_for_real(make_fleet: MakeFleet, repo: Path) -> tuple[Fleet, str, OrchestraApp]:
    """A real fleet with one run spawned, gated and accepted (a merge on main, a ledger entry), and its app."""
    real, run_id = fleet_in_review(make_fleet, repo)
    real.accept(run_id)
    return real, run_id, OrchestraApp(real, clock=lambda: CLOCK, watch=False)


async def test_z_reverts_an_accepted_run_after_asking_why(repo: Path, make_fleet: MakeFleet) -> None:
    """The revert key, on an accepted run shown with H: the same use-case as `orchestra revert`."""
    real, run_id, app = accepted_for_real(make_fleet, repo)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("H")
        await wait_in_app(pilot, lambda: app.screen.pane(run_id) is not None, "the accepted run's pane")
        app.screen.pane(run_id).focus()
        await pilot.press("z")
        await wait_in_app(pilot, lambda: isinstance(app.screen, TextPrompt), "the reason prompt")
        await pilot.press(*"flaky in production", "enter")
        await wait_in_app(pilot, lambda: real.get(run_id).reverted is not None, "the revert")
    assert real.get(run_id).reverted["reason"] == "flaky in production"
    assert [entry["action"] for entry in real.ledger.entries()] == ["accept", "revert"]


async def test_the_stats_view_counts_the_ledger_off_the_ui_thread(repo: Path, make_fleet: MakeFleet) -> None:
    from orchestra.ui.stats_screen import StatsScreen
    _real, _run_id, app = accepted_for_real(make_fleet, repo)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.action_stats()  # the palette's "Stats"
        await wait_in_app(pilot, lambda: isinstance(app.screen, StatsScreen) and app.screen.query("#table"),
                          "the stats view")
        table = app.screen.query_one("#table")
        await wait_in_app(pilot, lambda: str(table.render()).startswith("1 decision."), "the figures")
        assert "coder" in str(table.render()) and "100%" in str(table.render())
        await pilot.press("escape")
        await wait_in_app(pilot, lambda: not isinstance(app.screen, StatsScreen), "closed")
