"""The new-runs flow asks before a repository's setup commands first run, and only then."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestra.core.fleet.trust import commands_to_allow
from orchestra.ui.app import OrchestraApp
from orchestra.ui.dialogs import ConfirmDialog, NewRunDialog
from tests.core.helpers import wait_for
from tests.ui.test_app import fleet_with_score, settle

SCORE = """\
[orchestra]
setup = ["echo prepared > prepared.txt"]

[[agents]]
name = "worker"
kind = "shell"
command = "cat prepared.txt"

[[specs]]
id = "work"
intent = "work"
"""


def start_runs(fleet, answer: str) -> str:
    """Press n, start the highlighted spec, answer the trust dialog; return the dialog's text."""
    async def drive() -> str:
        app = OrchestraApp(fleet, watch=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("n")
            await pilot.pause()
            assert isinstance(app.screen, NewRunDialog)
            await pilot.press("ctrl+s")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog), f"expected the trust dialog, got {dialog!r}"
            text = f"{dialog.title_text}\n{dialog.detail}"
            await pilot.press(answer)
            await settle(app, pilot)
            return text
    return asyncio.run(drive())


def test_setup_commands_are_asked_about_once_before_runs_start(repo: Path) -> None:
    fleet = fleet_with_score(repo, SCORE)

    text = start_runs(fleet, "n")
    assert "echo prepared > prepared.txt" in text and "setup commands" in text
    assert fleet.runs() == [] and commands_to_allow(repo, ["echo prepared > prepared.txt"])

    start_runs(fleet, "y")
    runs = fleet.runs()
    assert len(runs) == 1 and not commands_to_allow(repo, ["echo prepared > prepared.txt"])
    wait_for(lambda: fleet.get(runs[0].id).state == "review")
    fleet.reject(runs[0].id, "cleanup")
