"""Idle watchers: a review run's supervisor stops after ORCHESTRA_WATCH_IDLE seconds without a change in
its worktree, and opening the fleet (Fleet.resume_watchers) starts it again; a decided run is never watched."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.runs.lifecycle import transition
from orchestra.core.runs.run import Run
from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import notes, processes_with, score_text, wait_for, wait_settled

FIX = "printf 'def answer():\\n    return 42\\n' > src/app.py"


def reviewed(make_fleet: MakeFleet, repo: Path) -> tuple[Fleet, Run]:
    fleet = make_fleet(repo, score_text({"coder": FIX}, [
        {"id": "fix", "intent": "Make answer() return 42", "allow": ["src/**"],
         "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review", run.message
    return fleet, run


def watcher_gone(fleet: Fleet, run_id: str) -> bool:
    run = fleet.get(run_id)
    return run.supervisor_pid is None and not processes_with(f"{fleet.repo.state_dir} {run_id}")


def test_an_idle_watcher_stops_and_opening_the_fleet_resumes_it(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRA_WATCH_IDLE", "1")
    fleet, run = reviewed(make_fleet, repo)

    wait_for(lambda: watcher_gone(fleet, run.id), timeout=20, message="the idle watcher to stop")
    assert any("stopped watching" in note for note in notes(fleet, run.id))
    assert fleet.get(run.id).state == "review"

    # An edit made while nobody watched is taken up as soon as the watcher is back.
    (Path(run.worktree) / "src" / "app.py").write_text("def answer():\n    return 43\n")
    monkeypatch.setenv("ORCHESTRA_WATCH_IDLE", "30")
    assert fleet.resume_watchers() == [run.id]
    assert supervisor_alive(fleet.get(run.id))
    changed = wait_for(lambda: (r := fleet.get(run.id)).candidate != run.candidate and r, timeout=20,
                       message="the resumed watcher to commit the edit")
    assert git(repo, "show", f"{changed.candidate}:src/app.py") == "def answer():\n    return 43"
    assert wait_settled(fleet, run.id).gates["check"].status == "failed"
    assert fleet.resume_watchers() == []  # it is still watching: no second one


def test_a_watcher_keeps_watching_while_the_worktree_changes(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRA_WATCH_IDLE", "30")
    fleet, run = reviewed(make_fleet, repo)
    pid = fleet.get(run.id).supervisor_pid

    (Path(run.worktree) / "notes.txt").write_text("a change\n")
    wait_for(lambda: (r := fleet.get(run.id)).candidate != run.candidate and r, timeout=20,
             message="the edit to be committed")
    assert fleet.get(run.id).supervisor_pid == pid and supervisor_alive(fleet.get(run.id))


def test_a_watcher_whose_run_was_decided_behind_its_back_stops_and_commits_nothing(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run = reviewed(make_fleet, repo)
    assert supervisor_alive(fleet.get(run.id))
    # A decision that raced a resumed watcher: the run is decided, its worktree (kept) still there.
    transition(fleet.store, run.id, "rejected", "rejected elsewhere")
    tip = git(repo, "rev-parse", run.branch)

    (Path(run.worktree) / "late.txt").write_text("written after the decision\n")

    wait_for(lambda: not processes_with(f"{fleet.repo.state_dir} {run.id}"), timeout=20,
             message="the decided run's watcher to stop")
    assert git(repo, "rev-parse", run.branch) == tip
