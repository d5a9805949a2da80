"""A keymap entry naming no binding is warned about, and the warning keeps its "[keymap]" prefix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from textual.content import Content

from orchestra.ui.app import OrchestraApp
from tests.ui.fleet_fixture import CLOCK, build_fleet


def shown(notification) -> str:
    """A toast's text as the Toast widget renders it (markup parsed when the notification asks for it)."""
    return Content.from_markup(notification.message).plain if notification.markup else notification.message


async def test_the_keymap_warning_shows_its_keymap_prefix(tmp_path: Path) -> None:
    fleet = build_fleet(tmp_path)
    fleet.score = replace(fleet.score, keymap=MappingProxyType({"run.acept": "y"}))
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        texts = [shown(n) for n in app._notifications]
    warning = next((text for text in texts if "run.acept" in text), None)
    assert warning is not None, texts
    assert warning.startswith("[keymap] 'run.acept' is not a binding id") and "run.accept" in warning
