"""What the terminal shows is what the app shows: nothing the app removed stays drawn.

The terminal here is a real emulator (pyte) fed the very updates the app sends, so a region the app
forgets to repaint stays visible, as it did on screen: toasts that had expired stayed drawn over the
panes until something laid the screen out again.
"""

from __future__ import annotations

from pathlib import Path

import pyte

from orchestra.ui.app import OrchestraApp
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for

SIZE = (80, 24)


class Terminal:
    """A terminal emulator fed every update the app sends (headless Textual writes none)."""

    def __init__(self, app: OrchestraApp) -> None:
        self.app = app
        self.screen = pyte.Screen(*SIZE)
        self.stream = pyte.Stream(self.screen)
        self.updates: list[str] = []  # the kind of each update: LayoutUpdate is a full frame
        shown = app._display

        def display(screen, renderable) -> None:
            if renderable is not None and screen is app.screen:
                self.stream.feed(renderable.render_segments(app.console))
                self.updates.append(type(renderable).__name__)
            shown(screen, renderable)

        app._display = display

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def cells(self) -> list[tuple]:
        """Every cell: its character, colours and weight (the focus shows in colours and weight)."""
        return cells(self.screen)

    def app_cells(self) -> list[tuple]:
        """The cells of a terminal the app would repaint from scratch now."""
        fresh = pyte.Screen(*SIZE)
        pyte.Stream(fresh).feed(self.app.screen._compositor.render_full_update().render_segments(self.app.console))
        return cells(fresh)


def cells(screen: pyte.Screen) -> list[tuple]:
    return [(char.data, char.fg, char.bg, char.bold) for y in range(screen.lines)
            for char in (screen.buffer[y][x] for x in range(screen.columns))]


async def test_an_expired_toast_leaves_nothing_drawn_behind(tmp_path: Path) -> None:
    app = OrchestraApp(build_fleet(tmp_path), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # run_test hides toasts by default
        terminal = Terminal(app)
        await pilot.pause()
        # Two announcements, as when two runs finish together; the first expires first.
        app.notify("r1 fixer is ready for review", timeout=0.6)
        app.notify("r4 flaky failed: the agent exited with status 1", severity="error", timeout=60)
        await wait_for(pilot, lambda: "r1 fixer is ready" in terminal.text() and "r4 flaky failed" in terminal.text(),
                       "both toasts on the terminal")
        # Textual refreshes its (invisible) toast rack as toasts come and go and as it scrolls to the newest:
        # that is what left the map of the screen out of date, and the expired toast drawn, on screen.
        app.screen.query_one("ToastRack").refresh()
        await wait_for(pilot, lambda: len(app._notifications) == 1, "the first toast to expire", timeout=5)
        await wait_for(pilot, lambda: "r1 fixer is ready" not in terminal.text(),
                       "the expired toast to leave the terminal", timeout=2)
        assert "r1 fixer is ready" not in terminal.text(), terminal.text()
        assert "r4 flaky failed" in terminal.text()
        assert terminal.cells() == terminal.app_cells()


async def test_moving_the_focus_repaints_the_two_panes_not_the_whole_screen(tmp_path: Path) -> None:
    app = OrchestraApp(build_fleet(tmp_path), clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        terminal = Terminal(app)
        await pilot.pause()
        terminal.updates.clear()
        for key in ("right", "down", "left", "up"):
            await pilot.press(key)
            await pilot.pause()
        assert terminal.updates and "LayoutUpdate" not in terminal.updates, terminal.updates
        # What was repainted is all that changed: the focus shows where it is, and nowhere else.
        assert terminal.cells() == terminal.app_cells()
        assert app.screen.focused is app.screen.query_one("#run-r1")
