"""The fleet's layout: the grid's shape on small and big terminals, the demo notice, what a pane says and repaints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from textual.content import Content
from textual.geometry import Region

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.fleet_grid import grid_shape
from orchestra.ui.run_pane import RunPane
from tests.ui.fleet_fixture import CLOCK, build_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def make_app(fleet: Fleet, demo: bool = False) -> OrchestraApp:
    return OrchestraApp(fleet, demo=demo, clock=lambda: CLOCK, watch=False)


@pytest.mark.parametrize(("count", "width", "height", "columns", "pane_height"), [
    (4, 200, 48, 2, 24),   # not four 50-column panes in one row, each 48 rows of mostly nothing
    (2, 200, 48, 2, 48),   # side by side, each 100 wide
    (1, 200, 48, 1, 48),
    (8, 160, 46, 2, 11),   # 80-column panes, four rows
    (4, 120, 32, 2, 16),
    (4, 80, 22, 2, 11),
    (3, 80, 22, 2, 11),    # one empty cell rather than 80-column panes 7 rows tall
    (12, 200, 48, 3, 12),  # 66 columns wide
    (10, 120, 34, 3, 8),   # every pane on screen rather than two columns to scroll
    (50, 80, 22, 2, 8),    # too many to fit: panes keep a useful minimum and the fleet scrolls
    (0, 120, 34, 1, 34),
])
def test_grid_shape(count: int, width: int, height: int, columns: int, pane_height: int) -> None:
    assert grid_shape(count, width, height) == (columns, pane_height)


async def test_four_runs_at_200x50_fill_a_two_by_two_grid(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        regions = [pane.region for pane in app.screen.shown_panes()]
        assert len({region.y for region in regions}) == 2 and len({region.x for region in regions}) == 2
        assert all(90 <= region.width <= 100 and region.height >= 23 for region in regions)
        # The tail fills the height: the working run's three lines of output all show.
        assert "editing mean()" in str(app.screen.pane("r1").render())


async def test_the_demo_notice_is_short_and_x_hides_it(fleet: Fleet) -> None:
    app = make_app(fleet, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        bar_height = app.screen.query_one("#notice-bar").region.height
        assert 1 <= bar_height <= 3
        notice = str(app.screen.query_one("#notice").render())
        assert "x hides this" in notice.splitlines()[0] and "Ledger:" in notice  # the whole notice shows
        fleet_height = app.screen.query_one("#fleet").region.height
        await pilot.press("x")
        await pilot.pause()
        assert not app.screen.query("#notice-bar")
        assert app.screen.query_one("#fleet").region.height == fleet_height + bar_height


async def test_the_hide_key_is_unavailable_without_a_notice(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.check_action("dismiss_notice", ()) is False


async def test_a_rejected_runs_pane_says_its_reason(fleet: Fleet) -> None:
    fleet.reject("r3", "touches README")
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("H")  # decided runs are archived until shown
        rendered = str(app.screen.pane("r3").render()).splitlines()
        assert "rejected: touches README" in rendered[:4]  # in the head, not scrolled away with the output


async def test_the_elapsed_time_tick_repaints_only_the_status_row(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.pane("r1")  # working
        pane.repaint()
        refreshed = spy_refresh(pane)
        pane.tick(CLOCK + 5)
        assert refreshed == [(Region(0, 0, pane.content_size.width, 1),)]
        refreshed.clear()
        pane.tick(CLOCK + 5)  # the same second again: nothing to repaint
        assert refreshed == []


async def test_an_unfocused_pane_repaints_later_and_only_the_new_rows(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.pane("r2")
        assert not pane.has_focus
        pane.repaint()
        refreshed = spy_refresh(pane)
        pane.add_events([{"type": "output", "text": "one more line"}])
        assert refreshed == [] and pane._pending is not None  # coalesced with what follows
        pane.repaint()  # what the timer does
        (regions,) = refreshed
        assert len(regions) == 1 and regions[0].height == 1  # the next empty row of the tail, nothing else
        assert "one more line" in str(pane.render())


async def test_the_focused_pane_shows_output_at_once(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.pane("r1")
        assert pane.has_focus
        pane.repaint()
        refreshed = spy_refresh(pane)
        pane.add_events([{"type": "output", "text": "live line"}])
        assert len(refreshed) == 1 and pane._pending is None


async def test_a_record_change_that_shows_nothing_new_repaints_nothing(fleet: Fleet) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.pane("r1")
        pane.repaint()
        refreshed = spy_refresh(pane)
        pane.show_run(dataclasses.replace(pane.run, supervisor_pid=1234), CLOCK)
        assert refreshed == []


def test_the_tail_scrolls_by_half_a_pane_so_a_new_line_moves_nothing_else() -> None:
    pane = RunPane(build_run(), CLOCK)

    def add_and_view(*numbers: int) -> list[str]:
        pane.extend_tail([Content(f"l{n}") for n in numbers])
        return [line.plain for line in pane.tail_view(6)]
    assert add_and_view(*range(10)) == ["l6", "l7", "l8", "l9"]
    assert add_and_view(10) == ["l6", "l7", "l8", "l9", "l10"]  # appended below: the other rows stay
    assert add_and_view(11) == ["l6", "l7", "l8", "l9", "l10", "l11"]
    assert add_and_view(12) == ["l9", "l10", "l11", "l12"]  # full: the view jumps by half its height


def build_run():
    from orchestra.core.runs.run import Run
    return Run(id="r9", agent="a", spec=None, task="t", branch="b", worktree="/nonexistent", base="0" * 40,
               target="main", agent_config={}, spec_config=None, state="working", started=CLOCK)


def spy_refresh(pane: RunPane) -> list[tuple[Region, ...]]:
    """Record the regions of each refresh of pane (an empty tuple: the whole pane)."""
    calls: list[tuple[Region, ...]] = []
    original = pane.refresh

    def refresh(*regions: Region, **kwargs):
        calls.append(regions)
        return original(*regions, **kwargs)
    pane.refresh = refresh
    return calls


def test_agent_output_in_a_pane_is_shown_as_written_never_as_markup() -> None:
    from orchestra.ui.run_pane import tail_lines
    lines = tail_lines([{"type": "output", "text": "[b]not bold[/b] \\[x]"}, {"type": "note", "text": "[i]n[/i]"}])
    assert [line.plain for line in lines] == ["[b]not bold[/b] \\[x]", "» [i]n[/i]"]


async def test_a_pane_draws_output_muted_cut_to_its_width_and_selectable(fleet: Fleet) -> None:
    """Output rows are drawn straight to the terminal line (not through Textual's text layout): they must
    still be cut with an ellipsis, muted, wide characters counted as two cells, and carry the offsets a
    mouse selection starts from."""
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        pane = app.screen.pane("r1")
        width = pane.size.width
        pane.add_events([{"type": "output", "text": "x" * (width + 20)}, {"type": "output", "text": "表" * width},
                         {"type": "output", "text": "[b]short[/b]"}])
        pane.repaint()
        await pilot.pause()
        rows = [row.plain for row in pane.rows()]
        y = rows.index("x" * (width + 20))
        pane.render_lines(Region(0, 0, pane.outer_size.width, pane.outer_size.height))  # as a frame does
        long, wide, short = (pane.render_line(y + n) for n in range(3))
        assert long.text == "x" * (width - 1) + "…" and long.cell_length == width
        assert wide.cell_length <= width and wide.text.endswith("…")
        assert short.text == "[b]short[/b]"
        status = pane.render_line(0)
        muted = long._segments[0].style.color
        assert muted is not None and muted != pane.visual_style.rich_style.color  # not the pane's plain text
        assert all(segment.style.meta["offset"][1] == y for segment in long._segments)
        offsets = [segment.style.meta["offset"][0] for segment in status._segments][:2]
        assert offsets == [0, len(status._segments[0].text)]
