"""The Gates tab on a real pytest project (a src-layout library, 300 tests, 40 failing): the check is named
"pytest", each failing test's own assertion shows, the tab scrolls by keyboard, the full log's path is
given; and the evidence line keeps the test counts at 80 and 120 columns, in the review and in a pane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.content import Content

from orchestra.core.base.redact import Redactor
from orchestra.core.fleet import Fleet
from orchestra.core.gates.commands import gate_log_path, run_check
from orchestra.core.score import parse_score
from orchestra.ui.app import OrchestraApp
from orchestra.ui.review_screen import ReviewScreen
from tests.core.test_gate_failures import PYTEST, make_pytest_project
from tests.ui.fleet_fixture import CLOCK, build_fleet, gate

SEVENTH = "tests/test_mylib.py::test_double_007"


CRITIC = {"name": "critic", "kind": "llm", "model": "openai/gpt-test", "vendor": "openai"}


@pytest.fixture
async def fleet(tmp_path: Path) -> Fleet:
    """The fixture's fleet, whose r3 ran `PYTHONPATH=src python -m pytest -q` (named as the score names it)
    on a real project: 40 of its 300 tests fail; a reviewer of the author's provider asked for changes."""
    fleet = build_fleet(tmp_path)
    spec = parse_score(f'[[specs]]\nid = "s"\nintent = "x"\nverify = [{json.dumps(PYTEST)}]\n', Path("o.toml"))
    check = spec.specs[0].verify[0].to_dict()
    project = make_pytest_project(tmp_path / "project")
    run = fleet.store.load("r3")
    tests = await run_check(check["name"], check["command"], project, run.tree,
                            gate_log_path(fleet.store.run_dir("r3"), check["name"]), 120, redact=Redactor())
    review = gate("review-critic", "failed", run.tree, "review", summary="changes requested",
                  verdict="changes requested", details={"agent": "critic", "provider": "openai", "same_provider": True})

    def ran(record) -> None:
        record.spec_config["verify"] = [check]
        record.review_config = {"agents": [CRITIC]}
        del record.gates["pytest"]
        record.gates.update({tests.name: tests, "secrets": gate("secrets", "passed", run.tree, "secrets"),
                             review.name: review})
    fleet.store.update("r3", ran)
    return fleet


async def open_review(app: OrchestraApp, pilot, run_id: str = "r3") -> ReviewScreen:
    await pilot.pause()
    app.screen.query_one(f"#run-{run_id}").focus()
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, ReviewScreen)
    return app.screen


async def test_the_gates_tab_shows_a_failing_test_s_assertion_and_the_log(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_review(app, pilot)
        await pilot.press("2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        detail = str(screen.query_one("#gate-detail").render())
        assert "✗ pytest 40 failed, 260 passed" in detail
        assert f"✗ {SEVENTH}" in detail and "assert 14 == 15" in detail
        assert "40 failing tests (their own output, from the log)" in detail
        log = gate_log_path(fleet.store.run_dir("r3"), "pytest")
        assert f"full log: {log}" in detail.replace("\n", "") and log.exists()
        scroll = screen.query_one("#gates-scroll")
        assert screen.focused is scroll and scroll.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert scroll.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y


@pytest.mark.parametrize("width", [80, 120])
async def test_the_review_s_evidence_line_keeps_the_test_counts(fleet: Fleet, width: int) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(width, 36)) as pilot:
        screen = await open_review(app, pilot)
        evidence = screen.query_one("#evidence")
        line = Content.from_markup(str(evidence.render())).plain
        assert "✗ 40 failed" in line and "not ready" in line
        assert Content.from_markup(line).cell_length <= evidence.content_size.width, line


@pytest.mark.parametrize("width", [80, 120])
async def test_a_pane_s_evidence_line_keeps_the_test_counts(fleet: Fleet, width: int) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(width, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one("#run-r3")
        room = pane.content_size.width
        line = pane.evidence_line(room).plain
        assert "40 failed" in line and "✗" in line.split("40 failed")[0]
        assert len(line) <= room, (room, line)
