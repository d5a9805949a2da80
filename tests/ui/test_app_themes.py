"""Themes in the running app: readable pane borders, a palette pick remembered, unknown names explained,
screenshots saved where they can be."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from textual.color import Color
from textual.command import CommandPalette

from orchestra.core.fleet import Fleet
from orchestra.core.settings import load_settings, settings_path
from orchestra.ui.app import OrchestraApp
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for

SHIPPED = sorted(path.stem for path in (Path(__file__).parents[2] / "themes").glob("*.toml"))


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


def contrast(first: Color, second: Color) -> float:
    """WCAG contrast ratio of two opaque colours."""
    def luminance(colour: Color) -> float:
        def channel(value: int) -> float:
            value /= 255
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(colour.r) + 0.7152 * channel(colour.g) + 0.0722 * channel(colour.b)
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", SHIPPED)
async def test_an_unfocused_panes_border_stands_out(fleet: Fleet, theme: str) -> None:
    fleet.score = replace(fleet.score, theme=theme)
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.theme == theme
        app.screen.query_one("#run-r2").focus()
        await pilot.pause()
        pane = app.screen.query_one("#run-r1")  # working, not focused: the plain border
        assert not pane.has_focus
        _kind, border = pane.styles.border_top
        behind = pane.background_colors[1]
        assert contrast(behind + border, behind) >= 3.0, f"{theme}: border {border.hex} on {behind.hex}"


async def test_a_theme_picked_in_the_palette_is_written_and_used_at_the_next_start(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"theme")
        await wait_for(pilot, lambda: "Theme" in options(app), "the Theme command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "orchestra-light" in options(app), "the list of themes")
        await pilot.press(*"orchestra-light")
        await wait_for(pilot, lambda: options(app)[:1] == ["orchestra-light"], "orchestra-light first")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "orchestra-light", "the theme to change")
        await app.workers.wait_for_complete()
    written = Path(os.environ["XDG_CONFIG_HOME"]) / "orchestra" / "settings.toml"
    assert settings_path() == written and '[ui]\ntheme = "orchestra-light"' in written.read_text()
    assert load_settings().theme == "orchestra-light"
    again = make_app(fleet)
    async with again.run_test(size=(120, 36)):
        assert again.theme == "orchestra-light"


def options(app: OrchestraApp) -> list[str]:
    if not isinstance(app.screen, CommandPalette):
        return []
    return [str(option.prompt).split("\n")[0] for option in app.screen.query_one("CommandList").options]


async def test_an_unknown_theme_is_reported_with_every_name_accepted(fleet: Fleet) -> None:
    fleet.score = replace(fleet.score, theme="solarised")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)):
        assert app.theme == "orchestra-dark"
        problem = next(problem for problem in app.theme_problems if "solarised" in problem)
    assert "orchestra themes: orchestra-dark, orchestra-high-contrast, orchestra-light" in problem
    assert "also Textual's:" in problem and "nord" in problem and "textual-light" in problem


async def test_an_unknown_builtin_name_is_not_a_problem(fleet: Fleet) -> None:
    fleet.score = replace(fleet.score, theme="nord")  # one of Textual's, which the list names
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)):
        assert app.theme == "nord" and app.theme_problems == []


async def test_a_screenshot_goes_to_the_data_dir_and_says_where(fleet: Fleet, isolated_home: Path) -> None:
    folder = isolated_home / ".local" / "share" / "orchestra" / "screenshots"
    assert not (isolated_home / "Downloads").exists()
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_screenshot()
        await wait_for(pilot, lambda: any("Saved screenshot" in n.message for n in app._notifications),
                       "the screenshot to be saved")
        message = next(n.message for n in app._notifications if "Saved screenshot" in n.message)
    saved = list(folder.glob("*.svg"))
    assert len(saved) == 1 and str(saved[0]) in message


async def test_a_screenshot_falls_back_to_the_current_directory(fleet: Fleet, isolated_home: Path,
                                                                tmp_path: Path, monkeypatch) -> None:
    blocked = isolated_home / ".local" / "share" / "orchestra"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the directory would be")
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        app.action_screenshot()
        await wait_for(pilot, lambda: any("Saved screenshot" in n.message for n in app._notifications),
                       "the screenshot to be saved")
    assert len(list(here.glob("*.svg"))) == 1


@pytest.mark.parametrize("theme", ["orchestra-light", "nord"])
async def test_the_start_up_theme_looks_as_if_picked_later_and_the_css_is_parsed_once(
        fleet: Fleet, theme: str, monkeypatch) -> None:
    """The chosen theme is in place before the stylesheet's first parse: no second parse before the first
    frame, and every colour, class and variable is what switching to the theme afterwards gives."""
    from textual.css.stylesheet import Stylesheet
    reparsed = []
    real_reparse = Stylesheet.reparse
    monkeypatch.setattr(Stylesheet, "reparse", lambda self: reparsed.append(1) or real_reparse(self))

    def looks(app: OrchestraApp) -> tuple:
        pane = app.screen.query_one("#run-r1")
        return (sorted(c for c in app.classes if c.startswith("-")), app.stylesheet._variables,
                pane.styles.border_top, pane.background_colors, app.screen.styles.background,
                app.screen.query_one("#run-r2").rich_style)

    fleet.score = replace(fleet.score, theme=theme)
    started = make_app(fleet)
    async with started.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert started.theme == theme and reparsed == []
        at_start = looks(started)
    fleet.score = replace(fleet.score, theme=None)
    switched = make_app(fleet)
    async with switched.run_test(size=(120, 36)) as pilot:
        assert switched.theme != theme
        switched.theme = theme
        await pilot.pause()
        assert looks(switched) == at_start
