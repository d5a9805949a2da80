"""Archived runs' output is read when H shows them, not for the first frame."""

from __future__ import annotations

from pathlib import Path

import pytest

import orchestra.ui.fleet_screen as fleet_screen
from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.test_fleet_scale import add_run
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """The four fixture runs and two decided ones with output."""
    fleet = build_fleet(tmp_path)
    add_run(fleet, "r5", "accepted", events=("r5 output",))
    add_run(fleet, "r6", "rejected", reason="superseded", events=("r6 output",))
    return fleet


def logs_read(fleet: Fleet, monkeypatch) -> list[str]:
    """The runs whose event log tail the store reads from now on."""
    read: list[str] = []
    tail = fleet.store.read_events_tail
    monkeypatch.setattr(fleet.store, "read_events_tail",
                        lambda run_id, size=65536: (read.append(run_id), tail(run_id, size))[1])
    return read


async def test_the_first_frame_reads_no_archived_runs_output(fleet: Fleet, monkeypatch) -> None:
    read = logs_read(fleet, monkeypatch)
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert sorted(read) == ["r1", "r2", "r3", "r4"]
        await pilot.press("H")
        assert "r5 output" in str(app.screen.pane("r5").render())  # a small log is read with the key
        assert sorted(read) == ["r1", "r2", "r3", "r4", "r5", "r6"]


async def test_a_large_archive_is_read_off_the_ui_thread(fleet: Fleet, monkeypatch) -> None:
    monkeypatch.setattr(fleet_screen, "READ_IN_PLACE", 0)  # every archive is "large"
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("H")
        await wait_for(pilot, lambda: screen.pane("r6") is not None, "the decided runs' panes")
        assert "r6 output" in str(screen.pane("r6").render())
        assert [pane.run.id for pane in screen.shown_panes()] == ["r1", "r2", "r3", "r4", "r5", "r6"]
        await pilot.press("H")
        assert [pane.run.id for pane in screen.shown_panes()] == ["r1", "r2", "r3", "r4"]
