"""Panes under another screen (the help, a dialog, a review) hold their repaints until the fleet is on top again.

A translucent screen over the fleet (the help) draws the fleet beneath it: every pane repaint there made
Textual render and dim the whole terminal, which is what kept keys waiting while runs streamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.fleet_screen import FleetScreen
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.test_fleet_layout import spy_refresh
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


async def test_a_pane_under_the_help_repaints_only_once_the_help_closes(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        fleet_screen = app.screen
        focused, pane = fleet_screen.pane("r1"), fleet_screen.pane("r2")
        focused.repaint()
        pane.repaint()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, FleetScreen), "the help to open")
        refreshed, focused_refreshed = spy_refresh(pane), spy_refresh(focused)
        focused.add_events([{"type": "output", "text": "written under the help"}])  # repainted at once on top
        focused.tick(CLOCK + 5)
        pane.add_events([{"type": "output", "text": "written under the help"}])
        pane.repaint()  # what its timer does
        await pilot.pause()
        assert refreshed == [] and focused_refreshed == []
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen is fleet_screen, "the help to close")
        await wait_for(pilot, lambda: refreshed, "the held pane to repaint")
        assert "written under the help" in str(pane.render())
