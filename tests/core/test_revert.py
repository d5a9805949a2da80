"""Rolling back an accepted run: one revert commit on the target that keeps what the target gained since,
refused with nothing changed when it would conflict or touch uncommitted work, and recorded in the ledger
next to the accept it undoes. (Killed at each step: tests/core/test_crash_decisions.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.runs.run import Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import fleet_in_review

def accepted_run(make_fleet: MakeFleet, repo: Path) -> tuple[Fleet, Run]:
    fleet, run_id = fleet_in_review(make_fleet, repo)
    return fleet, fleet.accept(run_id)


def commit_on_main(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"later: {name}")
    return git(repo, "rev-parse", "HEAD")


def entries_of(fleet: Fleet, run_id: str) -> list[dict]:
    return [entry for entry in fleet.ledger.entries() if entry.get("run") == run_id]


def test_a_revert_undoes_the_merge_keeps_later_work_and_names_the_accept_it_undoes(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run = accepted_run(make_fleet, repo)
    assert (repo / "work.txt").exists()
    later = commit_on_main(repo, "later.txt", "someone's later work\n")

    reverted = fleet.revert(run.id, reason="broke the nightly build")

    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", "HEAD^") == later and git(repo, "rev-list", "--count", f"{later}..HEAD") == "1"
    assert not (repo / "work.txt").exists() and (repo / "later.txt").read_text() == "someone's later work\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert reverted.state == "accepted" and reverted.reverted["commit"] == head
    assert reverted.reverted["reason"] == "broke the nightly build" and "reverted by" in reverted.message
    accept, revert = entries_of(fleet, run.id)
    assert (revert["action"], revert["reverts"], revert["reverts_decision"]) == ("revert", accept["hash"],
                                                                              accept["decision"])
    assert (revert["reverted_merge"], revert["revert_commit"]) == (run.merge_commit, head)
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Orchestra-Revert,valueonly)", head).strip()
    assert trailers == revert["decision"] == reverted.reverted["id"]
    assert fleet.ledger.verify().ok  # the revert commit is no accept's merge: the cross-check is content

    with pytest.raises(ActionRefused, match="already reverted"):
        fleet.revert(run.id)
    assert git(repo, "rev-parse", "HEAD") == head and len(entries_of(fleet, run.id)) == 2


def test_a_revert_that_conflicts_with_later_changes_is_refused_and_changes_nothing(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run = accepted_run(make_fleet, repo)
    later = commit_on_main(repo, "work.txt", "rewritten by hand since\n")
    with pytest.raises(ActionRefused, match=r"conflicts with later changes to main in: work.txt\.\nNothing was"):
        fleet.revert(run.id)
    assert git(repo, "rev-parse", "HEAD") == later and (repo / "work.txt").read_text() == "rewritten by hand since\n"
    assert [e["action"] for e in entries_of(fleet, run.id)] == ["accept"] and fleet.get(run.id).reverted is None
    assert not list(fleet.journal.dir.glob("*.json"))


def test_a_revert_that_would_touch_uncommitted_work_is_refused_and_keeps_it(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run = accepted_run(make_fleet, repo)
    tip = git(repo, "rev-parse", "HEAD")
    (repo / "work.txt").write_text("my edit, not committed\n")
    with pytest.raises(ActionRefused, match="uncommitted changes in files this revert would change: work.txt"):
        fleet.revert(run.id)
    assert git(repo, "rev-parse", "HEAD") == tip and (repo / "work.txt").read_text() == "my edit, not committed\n"
    assert fleet.get(run.id).reverted is None and len(entries_of(fleet, run.id)) == 1


def test_only_an_accepted_run_can_be_reverted(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)
    with pytest.raises(ActionRefused, match="only an accepted run's merge can be reverted"):
        fleet.revert(run_id)
    assert fleet.ledger.entries() == []


def test_revert_from_the_command_line(repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet, run = accepted_run(make_fleet, repo)
    capsys.readouterr()
    assert main(["-C", str(repo), "revert", run.id, "--reason", "not wanted after all"]) == 0
    out = capsys.readouterr().out
    head = git(repo, "rev-parse", "HEAD")
    assert out.startswith(f"Reverted {run.id}: {head[:10]} on main undoes its merge {run.merge_commit[:10]}.")
    assert main(["-C", str(repo), "runs"]) == 0
    remark = f"reverted by Test Conductor <conductor@example.test> ({head[:10]}): not wanted after all"
    assert remark in capsys.readouterr().out
    assert main(["-C", str(repo), "runs", "--json"]) == 0
    listed = {item["id"]: item for item in json.loads(capsys.readouterr().out)}
    assert listed[run.id]["reverted"]["commit"] == head
    assert main(["-C", str(repo), "revert", run.id]) == 1
    assert "already reverted" in capsys.readouterr().err
    assert main(["-C", str(repo), "ledger", "show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "revert" in shown[-1] and f"undoes merge {run.merge_commit[:10]} with {head[:10]}" in shown[-1]
    assert "“not wanted after all”" in shown[-1]
    assert "boundary✓ secrets✓ check✓" in shown[0]  # the gates as the accept saw them
