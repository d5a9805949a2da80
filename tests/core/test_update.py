"""The target moves on: how far a run is behind it, and `update` (rebase or merge, all or nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.fleet import update as fleet_update
from orchestra.core.fleet.update import UpdateRefused, refresh_behind, update_run
from orchestra.core.runs.run import Run
from orchestra.core.score import ConfigError, parse_score
from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import (
    events,
    ledger_lines,
    notes,
    score_text,
    wait_for,
    wait_settled,
    wait_state,
)
from tests.core.test_crash_decisions import orchestra

KILLED = -9
AGENT = ('if [ -n "$ORCHESTRA_REDIRECT" ]; then printf "%s" "$ORCHESTRA_REDIRECT" > redirected.txt; '
         "else printf 'def answer():\\n    return 42\\n' > src/app.py; fi")
SPEC = {"id": "fix", "intent": "Make answer() return 42", "allow": ["src/**", "redirected.txt"],
        "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}


def fleet_with(make_fleet: MakeFleet, repo: Path, mode: str | None = None, agent: str = AGENT) -> Fleet:
    head = f"[orchestra]\nupdate = '{mode}'\n\n" if mode else ""
    return make_fleet(repo, head + score_text({"coder": agent}, [SPEC]))


def in_review(fleet: Fleet) -> Run:
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review", run.message
    return run


def advance_main(repo: Path, count: int, path: str = "README.md") -> str:
    """Commit count changes to path on main (as another accepted run would) and return main's tip."""
    for number in range(count):
        with open(repo / path, "a") as file:
            file.write(f"line {number}\n")
        git(repo, "commit", "-q", "-am", f"main moves on ({number})")
    return git(repo, "rev-parse", "main")


def worktree_state(run: Run) -> dict[str, object]:
    """What a conflicting update must leave exactly as it was."""
    tree = Path(run.worktree)
    return {"head": git(tree, "rev-parse", "HEAD"), "branch": git(tree, "symbolic-ref", "HEAD"),
            "status": git(tree, "status", "--porcelain", "--untracked-files=all"),
            "files": {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*")
                      if p.is_file() and ".git" not in p.parts}}


def nothing_in_progress(fleet: Fleet, run: Run) -> bool:
    gitdir = Path(run.gitdir or "")
    return not any((gitdir / marker).exists() for marker in ("rebase-merge", "rebase-apply", "MERGE_HEAD"))


def not_blamed(fleet: Fleet, run: Run) -> bool:
    """Whether the next decision (which settles the worktree) finds nothing the agent did to its branch:
    the commits orchestra rewrote or tried are not reported as the agent's."""
    wait_settled(fleet, run.id)
    rejected = fleet.reject(run.id, "checked")
    [entry] = [e for e in ledger_lines(fleet) if e["action"] == "reject"]
    return not rejected.escapes and "escapes" not in entry


def journal_empty(fleet: Fleet) -> bool:
    directory = fleet_update.journal_of(fleet).dir
    return not directory.is_dir() or not list(directory.glob("*.json"))


# -- how far behind ----------------------------------------------------------------------------

def test_behind_counts_the_targets_new_commits_and_is_kept_until_the_target_moves(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    assert refresh_behind(fleet) == {run.id: 0}
    assert fleet.get(run.id).behind is None  # nothing written for a run that is not behind
    tip = advance_main(repo, 3)
    assert refresh_behind(fleet) == {run.id: 3}
    assert fleet.get(run.id).behind == {"commits": 3, "target": tip, "base": run.merge_base}

    def no_git(*args: object) -> int:
        raise AssertionError("counted again although neither the base nor the target moved")
    monkeypatch.setattr(fleet_update, "behind_count", no_git)
    assert refresh_behind(fleet) == {run.id: 3}


# -- updating ----------------------------------------------------------------------------------

def test_a_clean_rebase_moves_the_base_keeps_the_old_head_and_reruns_the_gates(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    old_head, old_tree = git(repo, "rev-parse", run.branch), run.tree
    tip = advance_main(repo, 2)

    result = update_run(fleet, run.id)

    assert result.commits == 2 and not result.conflicted and result.mode == "rebase"
    updated = fleet.get(run.id)
    assert updated.base == tip and updated.merge_base == tip and updated.behind["commits"] == 0
    assert git(repo, "merge-base", "--is-ancestor", tip, run.branch) == ""
    assert git(repo, "rev-list", "--merges", f"{tip}..{run.branch}") == ""  # rebased, not merged
    assert git(Path(run.worktree), "rev-parse", "HEAD") == updated.candidate == git(repo, "rev-parse", run.branch)
    assert (Path(run.worktree) / "README.md").read_text() == (repo / "README.md").read_text()
    assert updated.tree != old_tree
    kept = git(repo, "for-each-ref", "--format=%(objectname)", f"refs/orchestra/runs/{run.id}/before-update/")
    assert kept == old_head
    assert any("updated onto main" in note for note in notes(fleet, run.id))
    # The gates ran again on the new tree, and the agent is not blamed for the rewritten commits.
    settled = wait_settled(fleet, run.id)
    assert settled.gates["check"].tree == settled.tree and settled.gates["check"].status == "passed"
    assert not_blamed(fleet, run)


def test_merge_mode_merges_the_target_into_the_run(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo, mode="merge")
    run = in_review(fleet)
    old_head = git(repo, "rev-parse", run.branch)
    tip = advance_main(repo, 1)

    result = update_run(fleet, run.id)

    assert result.mode == "merge" and result.commits == 1
    parents = git(repo, "rev-list", "--parents", "-n", "1", run.branch).split()[1:]
    assert parents == [old_head, tip]
    assert fleet.get(run.id).base == tip
    assert wait_settled(fleet, run.id).gates["check"].status == "passed"


def test_a_conflict_left_to_the_conductor_changes_nothing(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    before = worktree_state(run)
    advance_main(repo, 1, "src/app.py")

    result = update_run(fleet, run.id, on_conflict="leave")

    assert result.conflicted == ["src/app.py"] and not result.redirected
    assert "conflicted in src/app.py" in result.line() and "nothing was changed" in result.line()
    assert worktree_state(run) == before and nothing_in_progress(fleet, run) and journal_empty(fleet)
    current = fleet.get(run.id)
    assert current.state == "review" and current.base == run.base and current.candidate == run.candidate
    assert ledger_lines(fleet) == []
    wait_for(lambda: supervisor_alive(fleet.get(run.id)), timeout=10, message="the watcher to be resumed")
    assert not_blamed(fleet, run)  # the aborted attempt is not the agent's doing


def test_a_conflict_redirects_the_agent_with_the_conflicted_files(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    head = git(repo, "rev-parse", run.branch)
    advance_main(repo, 1, "src/app.py")

    result = update_run(fleet, run.id)

    assert result.conflicted == ["src/app.py"] and result.redirected and result.run.state == "working"
    assert git(repo, "merge-base", "--is-ancestor", head, run.branch) == ""  # nothing of the run was lost
    [entry] = [e for e in ledger_lines(fleet) if e["action"] == "redirect"]
    assert "src/app.py" in entry["instruction"] and "git rebase main" in entry["instruction"]
    wait_state(fleet, run.id, "review")
    assert "src/app.py" in (Path(run.worktree) / "redirected.txt").read_text()


def test_update_is_refused_while_the_agent_works(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo, agent="echo started; sleep 30")
    run = fleet.spawn("fix")[0]
    wait_state(fleet, run.id, "working")
    with pytest.raises(UpdateRefused, match="still working") as refused:
        update_run(fleet, run.id)
    assert refused.value.exit_status == 3
    fleet.stop(run.id)


def test_the_score_names_the_update_mode_and_suggests_a_misspelt_one(tmp_path: Path) -> None:
    assert parse_score("[orchestra]\nupdate = 'merge'\n", tmp_path / "orchestra.toml").update == "merge"
    assert parse_score("", tmp_path / "orchestra.toml").update == "rebase"
    with pytest.raises(ConfigError) as error:
        parse_score("[orchestra]\nupdate = 'rebsae'\n", tmp_path / "orchestra.toml")
    assert "orchestra.update" in str(error.value) and "did you mean 'rebase'" in str(error.value)


# -- the command line and crashes ----------------------------------------------------------------

def test_the_command_updates_and_refuses_with_exit_3(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    tip = advance_main(repo, 1)
    done = orchestra(repo, "update", run.id)
    assert done.returncode == 0, done.stderr
    assert f"Updated {run.id} onto main" in done.stdout and "1 new commit;" in done.stdout
    assert fleet.get(run.id).base == tip
    fleet.reject(run.id, "done")
    refused = orchestra(repo, "update", run.id)
    assert refused.returncode == 3 and "nothing left to update" in refused.stderr


def test_a_process_killed_mid_rebase_is_undone_on_the_next_start(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    before = worktree_state(run)
    advance_main(repo, 1, "src/app.py")

    killed = orchestra(repo, "update", run.id, "--no-redirect", fault="update.conflicted")

    assert killed.returncode == KILLED
    assert not nothing_in_progress(fleet, run)  # git stopped on the conflict, and nobody aborted it
    fleet.runs()  # the next start converges
    assert nothing_in_progress(fleet, run) and worktree_state(run) == before and journal_empty(fleet)
    assert any("interrupted" in note for note in notes(fleet, run.id))
    assert not_blamed(fleet, run)


def test_a_process_killed_after_git_finished_is_recorded_on_the_next_start(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    tip = advance_main(repo, 1)

    assert orchestra(repo, "update", run.id, fault="update.updated").returncode == KILLED
    assert fleet.store.load(run.id).base == run.base  # git moved the branch; the run does not know yet

    fleet.runs()
    updated = fleet.get(run.id)
    assert updated.base == tip and updated.candidate == git(repo, "rev-parse", run.branch) and journal_empty(fleet)
    assert [e for e in events(fleet, run.id, "note") if e.get("update")]
    assert wait_settled(fleet, run.id).gates["check"].tree == fleet.get(run.id).tree


def test_a_process_killed_before_git_started_leaves_the_run_as_it_was(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fleet_with(make_fleet, repo)
    run = in_review(fleet)
    before = worktree_state(run)
    advance_main(repo, 1)

    assert orchestra(repo, "update", run.id, fault="update.journalled").returncode == KILLED
    assert not journal_empty(fleet)

    fleet.runs()
    assert journal_empty(fleet) and worktree_state(run) == before and fleet.get(run.id).base == run.base
    wait_for(lambda: supervisor_alive(fleet.get(run.id)), timeout=10, message="the watcher to be resumed")
