"""The key bar dims exactly the keys that do nothing now; the help lists every key of its screen and scrolls."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.help_screen import HelpScreen
from orchestra.ui.key_bar import KeyBar
from orchestra.ui.review_screen import ReviewScreen
from tests.ui.fleet_fixture import CLOCK, build_fleet
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def make_app(fleet: Fleet) -> OrchestraApp:
    return OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)


def dimmed(app: OrchestraApp) -> set[str]:
    """The descriptions the screen's key bar shows dimmed."""
    text = app.screen.query_one(KeyBar).text
    return {text.plain[span.start:span.end].split(" ", 1)[-1] for span in text.spans if "muted" in str(span.style)}


def shown(app: OrchestraApp) -> str:
    return app.screen.query_one(KeyBar).text.plain


async def test_the_fleet_bar_shows_a_review_runs_keys_enabled_and_follows_focus(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one("#run-r2").focus()  # in review
        await wait_for(pilot, lambda: "Accept" not in dimmed(app), "accept to be shown available on r2")
        assert {"Reject", "Redirect", "Shell"}.isdisjoint(dimmed(app)) and "Stop" in dimmed(app)
        app.screen.query_one("#run-r1").focus()  # working: nothing to accept yet, but it can be stopped
        await wait_for(pilot, lambda: "Accept" in dimmed(app), "accept to be dimmed on r1")
        assert "Stop" not in dimmed(app)
        await pilot.press("right")  # keys move focus too
        await wait_for(pilot, lambda: "Accept" not in dimmed(app), "accept to be available again on r2")


async def test_the_bar_follows_a_change_of_the_focused_runs_state(fleet: Fleet) -> None:
    from dataclasses import replace

    from orchestra.core.runs.feed import RunUpdate
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one("#run-r1").focus()
        await wait_for(pilot, lambda: "Accept" in dimmed(app), "accept to be dimmed on the working run")
        app.apply_updates({"r1": RunUpdate(replace(app.runs["r1"], state="review"), [])})
        await wait_for(pilot, lambda: "Accept" not in dimmed(app), "accept to be available once r1 is in review")


def help_keys(app: OrchestraApp) -> list[str]:
    return [keys for _id, keys, _desc, _tip in app.screen.rows]


async def test_help_from_the_review_lists_the_diffs_keys_and_q_once(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        app.open_review("r2")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review screen")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        keys = help_keys(app)
        descriptions = [desc for _id, _keys, desc, _tip in app.screen.rows]
        assert "]" in keys and "[" in keys
        assert "Line down" in descriptions and "Page down" in descriptions  # the diff's own scrolling keys
        assert [k for k in keys if "q" in k.split(", ")] == ["esc, q"]  # q goes back here; it does not quit
        ids = [binding_id for binding_id, *_ in app.screen.rows if binding_id]
        assert len(ids) == len(set(ids))


async def test_help_scrolls_to_its_last_key_by_keyboard_at_80x24(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        sheet = app.screen.query_one("#sheet")
        await wait_for(pilot, lambda: sheet.max_scroll_y > 0, "the help to be taller than the terminal")
        assert "esc Close" in app.screen.query_one(KeyBar).text.plain  # its own keys, not the fleet's
        await pilot.press("j")
        await wait_for(pilot, lambda: sheet.scroll_y == 1, "j to scroll one line")
        await pilot.press("end")
        await wait_for(pilot, lambda: sheet.scroll_y == sheet.max_scroll_y, "end to reach the last key")
        keys = app.screen.query_one("#keys")  # its last line is the last binding
        assert keys.virtual_region.bottom <= sheet.scroll_y + sheet.scrollable_content_region.height
        await pilot.press("home")
        await wait_for(pilot, lambda: sheet.scroll_y == 0, "home to go back to the top")
        for key in ("pagedown", "down", "k", "pageup", "up"):
            await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_help_wraps_long_descriptions_in_their_own_column(fleet: Fleet) -> None:
    from orchestra.ui.help_screen import sheet_lines
    rows = [("run.accept", "a", "Accept", "Merge the focused run into the target branch (asks first unless every "
                                          "gate is green) and a few more words to wrap")]
    lines = [line.plain for line in sheet_lines(rows, 40)]
    assert len(lines) > 2
    assert lines[0].startswith("a ")
    assert all(line.startswith("   ") for line in lines[1:])  # nothing wraps under the key
    assert all(len(line) <= 40 for line in lines)


async def test_the_fleet_bar_at_80_columns_leaves_out_whole_keys_and_keeps_help_and_quit(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.screen.query_one(KeyBar)
        await wait_for(pilot, lambda: "Accept" in shown(app), "the fleet's keys")
        line = str(bar.render())
        assert len(line) <= 80 and "? Keys" in line and "q Quit" in line and "a Accept" in line
        hints = [hint.plain for _rank, hint in bar.items]
        assert all(hint in line or hint.split(" ", 1)[-1] not in line for hint in hints), "a key cut in half"
        assert len(line.strip()) < len(bar.text.plain.strip()), "at 80 columns some keys must be left out"
