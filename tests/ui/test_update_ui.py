"""The target moves on (how far behind, u/U) and publishing (P), from the keys and the palette."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.ui.app import OrchestraApp
from orchestra.ui.review_screen import ReviewScreen
from orchestra.ui.run_pane import RunPane
from tests.ui.fleet_fixture import CLOCK, build_fleet, git
from tests.ui.test_palette import offered, open_palette_and_type
from tests.ui.waiting import wait_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


def advance_main(fleet: Fleet, count: int) -> str:
    root = fleet.repo.root
    for number in range(count):
        with open(root / "NEWS", "a") as news:
            news.write(f"news {number}\n")
        git(root, "add", "NEWS")
        git(root, "commit", "-q", "-m", f"news {number}")
    return git(root, "rev-parse", "main")


def pane(app: OrchestraApp, run_id: str) -> RunPane:
    return app.screen.query_one(f"#run-{run_id}", RunPane)


def review_title(app: OrchestraApp) -> str:
    """The review screen's header line, once it is shown ("" before)."""
    if not isinstance(app.screen, ReviewScreen) or not app.screen.query("#title"):
        return ""
    return str(app.screen.query_one("#title").render())


def notifications(app: OrchestraApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


def count_behind(fleet: Fleet, run_id: str, commits: int) -> None:
    run = fleet.store.load(run_id)
    tip = git(fleet.repo.root, "rev-parse", "main")
    fleet.store.set(run_id, behind={"commits": commits, "target": tip, "base": run.merge_base or run.base})


async def test_panes_and_the_review_header_say_how_far_behind_the_target_is(fleet: Fleet) -> None:
    count_behind(fleet, "r2", 3)
    count_behind(fleet, "r3", 0)
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        assert "3 behind main" in pane(app, "r2").status_line().plain
        assert "behind" not in pane(app, "r3").status_line().plain  # nothing when 0
        app.open_review("r2")
        await wait_for(pilot, lambda: "3 behind main" in review_title(app), "the review header to say it")


async def test_a_count_taken_against_another_base_is_not_shown(fleet: Fleet) -> None:
    fleet.store.set("r2", behind={"commits": 3, "target": "0" * 40, "base": "1" * 40})
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)):
        assert "behind" not in pane(app, "r2").status_line().plain


async def test_panes_follow_the_target_when_it_moves(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK)
    async with app.run_test(size=(120, 36)) as pilot:
        assert "behind" not in pane(app, "r2").status_line().plain
        # The watch on the target starts after a first count, at a moment the test cannot see: the target is
        # moved (as an accept of another run would) until a move is followed.
        for moves in range(1, 11):
            advance_main(fleet, 1)
            try:
                await wait_for(pilot, lambda moves=moves: f"{moves} behind main" in pane(app, "r2").status_line().plain,
                               f"the pane to say {moves} behind", timeout=2.0)
                break
            except AssertionError:
                continue
        assert f"{moves} behind main" in pane(app, "r2").status_line().plain
        # Seen once, maybe by the first count itself: the next move must come through the watch.
        advance_main(fleet, 1)
        await wait_for(pilot, lambda: f"{moves + 1} behind main" in pane(app, "r2").status_line().plain,
                       "the next move")
        await wait_for(pilot, lambda: f"{moves + 1} behind main" in pane(app, "r3").status_line().plain, "every pane")
        await app.action_quit()


async def test_update_is_dimmed_while_the_agent_works_and_says_why(fleet: Fleet) -> None:
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane(app, "r1").focus()
        await pilot.pause()
        assert app.check_action("update", ()) is None and app.check_action("publish", ()) is None
        await pilot.press("u")
        await wait_for(pilot, lambda: "still working" in notifications(app), "the reason to be shown")
        assert fleet.store.load("r1").state == "working"


async def test_u_updates_the_focused_run_and_U_the_reviewed_one(fleet: Fleet) -> None:
    # The fixture's runs have no worktree: an update is refused with git's reason, which is enough to see
    # that each key reached the use-case for the right run (test_update.py covers the update itself).
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane(app, "r2").focus()
        await pilot.pause()
        assert app.check_action("update", ()) is True
        await pilot.press("u")
        await wait_for(pilot, lambda: "Updating r2 onto main" in notifications(app), "u to start the update")
        await app.workers.wait_for_complete()
        app.open_review("r3")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review screen")
        await pilot.press("U")
        await wait_for(pilot, lambda: "Updating r3 onto main" in notifications(app), "U to start the update")
        await app.workers.wait_for_complete()
        await open_palette_and_type(app, pilot, "r3", "Update r3 (tester)")
        assert any("Push r3 (tester)" in prompt for prompt in offered(app))


async def test_P_pushes_the_run_and_shows_where(fleet: Fleet, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(fleet.repo.root, "remote", "add", "origin", "git@github.com:o/r.git")
    git(fleet.repo.root, "config", "remote.origin.pushurl", str(remote))
    monkeypatch.setenv("PATH", os.path.dirname(shutil.which("git") or "/usr/bin/git"))  # no gh
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane(app, "r2").focus()
        await pilot.pause()
        await pilot.press("P")
        await wait_for(pilot, lambda: "github.com/o/r/compare/main..." in notifications(app), "the compare URL")
        await app.workers.wait_for_complete()
    branch = fleet.store.load("r2").branch
    assert git(remote, "rev-parse", f"refs/heads/{branch}") == git(fleet.repo.root, "rev-parse", branch)
    assert fleet.ledger.last()["action"] == "publish"


# -- a real run: its worktree brought up to date, or its conflict sent to the agent ----------------

AGENT = ('if [ -n "$ORCHESTRA_REDIRECT" ]; then printf "%s" "$ORCHESTRA_REDIRECT" > redirected.txt; '
         "else printf 'def answer():\\n    return 42\\n' > src/app.py; fi")


@pytest.fixture
def live_fleet(repo: Path):
    """A fleet with one real run of a shell agent in review; every run is rejected at the end."""
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import load_score
    from tests.core.conftest import decide_everything
    from tests.core.helpers import score_text, wait_settled, write_score
    write_score(repo, score_text({"coder": AGENT}, [{"id": "fix", "intent": "Make answer() return 42",
                                                      "allow": ["src/**", "redirected.txt"]}]))
    opened = open_repository(repo)
    fleet = Fleet(opened, load_score(opened.score_path))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review", run.message
    yield fleet, run.id
    assert not decide_everything(fleet)


def commit_in(repo: Path, path: str, text: str) -> str:
    from tests.conftest import git as plain_git
    (repo / path).write_text(text)
    plain_git(repo, "commit", "-q", "-am", f"main changes {path}")
    return plain_git(repo, "rev-parse", "main")


async def test_u_rebases_a_real_run_onto_the_moved_target(live_fleet, repo: Path) -> None:
    fleet, run_id = live_fleet
    tip = commit_in(repo, "README.md", "# moved on\n")
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane(app, run_id).focus()
        await pilot.pause()
        await pilot.press("u")
        await wait_for(pilot, lambda: f"Updated {run_id} onto main" in notifications(app), "the update to be reported",
                       timeout=30)
        await app.workers.wait_for_complete()
    assert fleet.store.load(run_id).base == tip


async def test_a_conflict_asks_and_redirects_the_agent(live_fleet, repo: Path) -> None:
    fleet, run_id = live_fleet
    commit_in(repo, "src/app.py", "def answer():\n    return 43\n")
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane(app, run_id).focus()
        await pilot.pause()
        await pilot.press("u")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", "the conflict to be asked about",
                       timeout=30)
        await pilot.press("y")
        await wait_for(pilot, lambda: (fleet.ledger.last() or {}).get("action") == "redirect", "the redirect",
                       timeout=30)
        await app.workers.wait_for_complete()
    assert "src/app.py" in fleet.ledger.last()["instruction"]


async def test_a_target_branch_that_does_not_exist_is_shown_as_unknown(fleet: Fleet) -> None:
    """The first frame names the score's target as written (no git call before it); whether the branch exists
    is checked just after, and a missing one shows as "?"."""
    git(fleet.repo.root, "branch", "-m", "main", "trunk")
    app = OrchestraApp(fleet, clock=lambda: CLOCK)
    async with app.run_test(size=(120, 36)) as pilot:
        topbar = app.screen.query_one("#topbar")
        await wait_for(pilot, lambda: "→ ?" in str(topbar.render()), "the top bar to show the target as unknown")
        await app.action_quit()
