"""Pilot tests: the conductor's keys give the right ledger entries and git state."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from textual import events

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import ConfirmDialog, TextPrompt
from orchestra.ui.fleet_screen import FleetScreen
from orchestra.ui.help_screen import HelpScreen
from orchestra.ui.review_screen import ReviewScreen
from tests.core.helpers import wait_for
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for as wait_screen


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


def git_out(fleet: Fleet, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=fleet.repo.root, capture_output=True, text=True, check=True).stdout


async def focus_run(app: OrchestraApp, pilot, run_id: str) -> None:
    app.screen.query_one(f"#run-{run_id}").focus()
    await pilot.pause()


async def settle(app: OrchestraApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_accept_green_run_by_key_merges_and_records(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r2")
        await pilot.press(app.keymap.get("run.accept", "a"))
        await settle(app, pilot)
    entry = fleet.ledger.last()
    assert entry["action"] == "accept" and entry["run"] == "r2"
    assert entry["actor"] == "Test Conductor <conductor@example.test>"
    assert [g["status"] for g in entry["gates"]] == ["passed", "passed", "passed"]
    assert "Orchestra-Run: r2" in git_out(fleet, "log", "-1", "--format=%B", "main")
    assert (fleet.repo.root / "calc" / "stats.py").read_text().endswith("/ len(values)\n")
    assert fleet.store.load("r2").state == "accepted"
    assert fleet.ledger.verify().ok


async def test_accept_with_failing_gates_asks_first(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r3")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "boundary failed: README.md" in app.screen.detail and "pytest is stale" in app.screen.detail
        await pilot.press("n")
        await settle(app, pilot)
        assert fleet.ledger.last() is None
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
    assert fleet.ledger.last()["run"] == "r3" and fleet.ledger.last()["forced"] is True
    assert fleet.store.load("r3").state == "accepted"


async def test_reject_by_key_records_reason_and_keeps_branch(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r3")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"touches README")
        await pilot.press("enter")
        await settle(app, pilot)
    entry = fleet.ledger.last()
    assert (entry["action"], entry["run"], entry["reason"]) == ("reject", "r3", "touches README")
    assert "orchestra/fix-mean/r3-tester" in git_out(fleet, "branch", "--list", "orchestra/*")
    assert fleet.store.load("r3").state == "rejected"
    assert git_out(fleet, "rev-parse", "main").strip() == fleet.store.load("r3").base


async def test_unavailable_key_is_dimmed_and_says_why(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r4")
        assert app.check_action("accept", ()) is None
        await pilot.press("a")
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
    assert any("only a run in review can be accepted" in m for m in messages)
    assert fleet.ledger.last() is None


async def test_keymap_remaps_by_id_and_help_lists_it(fleet: Fleet) -> None:
    from types import MappingProxyType
    from dataclasses import replace
    fleet.score = replace(fleet.score, keymap=MappingProxyType({"run.accept": "y"}))
    app = make_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        await focus_run(app, pilot, "r2")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {row[0]: row[1] for row in app.screen.rows}
        assert rows["run.accept"] == "y" and rows["fleet.new"] == "n"
        await pilot.press("escape")
        await pilot.press("a")  # no longer bound to accept
        await settle(app, pilot)
        assert fleet.ledger.last() is None
        await pilot.press("y")
        await settle(app, pilot)
    assert fleet.ledger.last()["run"] == "r2"


async def test_enter_opens_review_with_gate_details(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r3")
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ReviewScreen)
        await pilot.press("2")
        await pilot.pause()
        detail = str(app.screen.query_one("#gate-detail").render())
        assert "README.md (outside allow)" in detail
        assert "tests/test_stats.py::test_mean" in detail and "stale" in detail
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ReviewScreen)


def test_fleet_screen_snapshot(fleet: Fleet, snap_compare) -> None:
    assert snap_compare(make_app(fleet), terminal_size=(120, 34))


def test_review_screen_snapshot(fleet: Fleet, snap_compare) -> None:
    async def open_review(pilot) -> None:
        await pilot.pause()  # the auto-pilot starts before the fleet screen is composed
        pilot.app.screen.query_one("#run-r3").focus()
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    assert snap_compare(make_app(fleet), terminal_size=(120, 34), run_before=open_review)


def fleet_with_score(repo: Path, score_text: str) -> Fleet:
    """A fleet on repo with score_text committed as its orchestra.toml (for runs that really run)."""
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import load_score
    (repo / "orchestra.toml").write_text(score_text)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "score"], cwd=repo, check=True)
    handle = open_repository(repo)
    return Fleet(handle, load_score(handle.score_path))


def test_redirect_by_key_reruns_agent_with_instruction(repo: Path) -> None:
    """A real run: the redirect reaches the agent as ORCHESTRA_REDIRECT, on top of its earlier work."""
    import asyncio
    fleet = fleet_with_score(repo,
        '[[agents]]\nname = "echo"\nkind = "shell"\n'
        'command = "echo \\"${ORCHESTRA_REDIRECT:-first}\\" >> notes.txt"\n\n'
        '[[specs]]\nid = "notes"\nintent = "write notes"\n')
    run = fleet.spawn("notes")[0]
    wait_for(lambda: fleet.get(run.id).state == "review" and all(
        g.status == "passed" for g in fleet.get(run.id).gates.values()))

    async def drive() -> None:
        app = OrchestraApp(fleet, watch=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await focus_run(app, pilot, run.id)
            await pilot.press("d")
            await pilot.press(*"be brief")
            await pilot.press("enter")
            await settle(app, pilot)
    asyncio.run(drive())
    entry = fleet.ledger.last()
    assert (entry["action"], entry["instruction"]) == ("redirect", "be brief")
    wait_for(lambda: fleet.get(run.id).state == "review" and fleet.get(run.id).redirects == ["be brief"]
               and git_out(fleet, "rev-list", "--count", f"{run.base}..{run.branch}").strip() == "2")
    shown = git_out(fleet, "show", f"{fleet.get(run.id).branch}:notes.txt")
    assert shown == "first\nbe brief\n"
    fleet.reject(run.id, "cleanup")


async def test_empty_fleet_says_how_to_start(repo: Path) -> None:
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import parse_score
    handle = open_repository(repo)
    score = parse_score('[[agents]]\nname = "a"\nkind = "shell"\ncommand = "true"\n\n'
                        '[[specs]]\nid = "s1"\nintent = "do it"\n', handle.score_path)
    app = OrchestraApp(Fleet(handle, score), watch=False)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        empty = app.screen.query_one("#empty")
        assert empty.display and empty.region.height > 0
        assert "Press n to start runs of a spec (s1)" in str(empty.render())


async def test_rejected_pane_shows_the_reason(fleet: Fleet) -> None:
    fleet.reject("r3", "touches README")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("H")  # decided runs are archived: H shows them
        await pilot.pause()
        assert "touches README" in str(app.screen.query_one("#run-r3").render())


def test_new_free_text_task_with_picked_agents(repo: Path) -> None:
    """`n`, the free-text entry, a typed task and one ticked agent start exactly that run."""
    import asyncio
    from orchestra.ui.dialogs import AgentPicker, NewRunDialog
    fleet = fleet_with_score(repo,
        '[[agents]]\nname = "first"\nkind = "shell"\ncommand = "echo \\"$ORCHESTRA_TASK\\" > task.txt"\n\n'
        '[[agents]]\nname = "second"\nkind = "shell"\ncommand = "true"\n\n'
        '[[specs]]\nid = "notes"\nintent = "write notes"\nagents = ["second"]\n')

    async def drive() -> list[str]:
        app = OrchestraApp(fleet, watch=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("n")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, NewRunDialog)
            picker = dialog.query_one(AgentPicker)
            assert picker.selected == ["second"]  # the highlighted spec names only `second`
            await pilot.press("down", "enter")  # the free-text entry: nothing ticked, the task input shows
            await pilot.pause()
            assert picker.selected == [] and app.focused is dialog.query_one("#task")
            await pilot.press(*"say hi", "tab", "space")  # tick the first agent
            await pilot.pause()
            boxes = [picker.render_line(y).text[:3] for y in range(2)]
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            return boxes
    boxes = asyncio.run(drive())
    assert boxes[0].strip() and not boxes[1][1].strip(), f"ticked vs unticked boxes: {boxes!r}"
    runs = fleet.runs()
    assert [(r.agent, r.spec, r.task) for r in runs] == [("first", None, "say hi")]
    wait_for(lambda: fleet.get(runs[0].id).state == "review")
    assert git_out(fleet, "show", f"{runs[0].branch}:task.txt") == "say hi\n"
    fleet.reject(runs[0].id, "cleanup")


def burst(app: OrchestraApp, *keys: str) -> None:
    """Post keys the way the terminal driver does when they arrive together (typeahead, a burst over
    SSH): no waiting between them, unlike pilot.press."""
    characters = {"enter": "\r", "escape": "\x1b"}
    for key in keys:
        app.post_message(events.Key(key, characters.get(key, key)))


async def test_keys_typed_right_after_a_dialog_closes_reach_the_fleet(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r2")
        await pilot.press("r", *"because")
        assert isinstance(app.screen, TextPrompt)
        burst(app, "enter", "l", "enter")  # submit, move to r3, open it
        await settle(app, pilot)
        await wait_screen(pilot, lambda: isinstance(app.screen, ReviewScreen), "r3's review to open")
        assert isinstance(app.screen, ReviewScreen) and app.screen.run.id == "r3"
        assert app.return_code is None  # still running: the second enter did not answer the prompt again
    entry = fleet.ledger.last()
    assert (entry["action"], entry["run"], entry["reason"]) == ("reject", "r2", "because")
    assert len(fleet.ledger.entries()) == 1


async def test_a_burst_of_escapes_leaves_the_fleet_on_screen(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r3")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        burst(app, "escape", "escape", "escape")
        await wait_screen(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet after the escapes")
        await pilot.pause()  # the escapes after the first are handled, by the fleet
        assert isinstance(app.screen, FleetScreen) and app.return_code is None
        burst(app, "l", "l", "enter")  # quick arrows move one pane each
        await wait_screen(pilot, lambda: isinstance(app.screen, ReviewScreen), "a review to open")
        assert isinstance(app.screen, ReviewScreen) and app.screen.run.id == "r4"  # r3 -> r4 (the last)


async def test_accepting_from_the_review_returns_to_the_fleet(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r3")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("a")  # failing gates: asks first
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(app, pilot)
        await wait_screen(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet after the accept")
        assert isinstance(app.screen, FleetScreen)
    assert fleet.ledger.last()["run"] == "r3"


async def test_a_run_that_starts_waiting_rings_the_bell_and_shows_the_question(fleet: Fleet) -> None:
    from orchestra.core.runs.feed import RunUpdate
    app = make_app(fleet)
    written: list[str] = []
    async with app.run_test(size=(120, 36)) as pilot:
        from orchestra.ui.notifier import notifier_for
        notifier_for(app).write = written.append  # what would reach the terminal
        await pilot.pause()

        def ask(run) -> None:
            run.state, run.message = "waiting", "asks: Overwrite calc/stats.py? (y/n)"
            run.activity = {"state": "waiting", "reason": run.message}
        app.apply_updates({"r1": RunUpdate(fleet.store.update("r1", ask), [])})
        await pilot.pause()
        assert "".join(written).startswith("\a") and "\x1b]9;" in "".join(written)  # the bell, then OSC 9
        assert any("r1 fixer is waiting for input" in n.message for n in app._notifications)
        pane = app.screen.query_one("#run-r1")
        assert "Overwrite calc/stats.py? (y/n)" in str(pane.render()) and pane.has_class("-waiting")


async def test_the_shell_key_explains_when_the_terminal_cannot_hand_over(fleet: Fleet) -> None:
    worktree = Path(fleet.store.load("r2").worktree)
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r2")
        await pilot.press("o")
        await pilot.pause()
        assert any(f"worktree {worktree} is missing" in n.message for n in app._notifications)
        worktree.mkdir(parents=True)  # the fixture's runs have none
        await pilot.press("o")  # headless: Textual cannot suspend
        await pilot.pause()
        assert any(f"cd {fleet.store.load('r2').worktree}" in n.message for n in app._notifications)


async def test_a_theme_picked_in_the_app_is_remembered_for_the_next_start(fleet: Fleet) -> None:
    from orchestra.core.settings import load_settings
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.theme == "orchestra-dark"
        app.theme = "orchestra-light"  # what picking it in the command palette does
        await settle(app, pilot)
    assert load_settings().theme == "orchestra-light"
    again = make_app(fleet)
    async with again.run_test(size=(120, 36)) as pilot:
        assert again.theme == "orchestra-light"


async def test_a_damaged_run_is_shown_and_can_be_rejected_by_key(fleet: Fleet) -> None:
    record = fleet.store.run_dir("r3") / "run.json"
    record.write_text(record.read_text()[:40])
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.screen.query_one("#run-r3")
        assert pane.run.damaged and "run.json cannot be read" in pane.run.message
        await focus_run(app, pilot, "r3")
        await pilot.press("a")  # refused, and the conductor is told why
        await pilot.pause()
        assert fleet.ledger.last() is None
        await pilot.press("R")
        await settle(app, pilot)
    assert fleet.ledger.last()["run"] == "r3" and fleet.store.load("r3").state == "rejected"


async def test_accept_under_an_approval_rule_is_an_approval_shown_on_the_pane(fleet: Fleet) -> None:
    import dataclasses
    from orchestra.core.score.model import ApprovalRule
    rule = ApprovalRule(paths=("calc/**",), require=2)
    ruled = Fleet(fleet.repo, dataclasses.replace(fleet.score, approvals=(rule,)))
    app = make_app(ruled)
    async with app.run_test(size=(120, 36)) as pilot:
        await focus_run(app, pilot, "r2")
        await pilot.press(app.keymap.get("run.accept", "a"))
        await settle(app, pilot)
        assert any(n.message.startswith("Approved r2: 1 of 2 approvals: Test Conductor") for n in app._notifications)
        from orchestra.core.runs.feed import RunUpdate
        app.apply_updates({"r2": RunUpdate(ruled.store.load("r2"), [])})  # as the fleet's watch would
        pane = app.screen.query_one("#run-r2")
        await wait_screen(pilot, lambda: "1 of 2 approvals: Test Conductor" in pane.render().plain,
                          "the approvals on the pane")
    assert ruled.ledger.last()["action"] == "approve" and ruled.store.load("r2").state == "review"
