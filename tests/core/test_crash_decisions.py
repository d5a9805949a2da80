"""Crash-safety of decisions, by injection: the process is killed at each named step in turn.

`orchestra accept|reject|redirect` runs with ORCHESTRA_FAULT naming one step, dies there with SIGKILL,
and the next orchestra command must converge: the target holds the merge if and only if the ledger has
exactly one accept entry for it, the run's state agrees, a retry never merges twice, and an entry made
by the recovery says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from orchestra.core.base import faults
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.decisions import FAULT_POINTS, STEPS
from orchestra.core.ledger import chain  # noqa: F401  (declares the ledger's fault points)
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import PYTHON, SRC, events, fleet_in_review, wait_settled, wait_state

KILLED = -signal.SIGKILL


def orchestra(repo: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a session of its own (an armed Ctrl-C reaches only it), optionally armed."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("ORCHESTRA_FAULT", None)
    if fault:
        env["ORCHESTRA_FAULT"] = fault
    return subprocess.run([PYTHON, "-m", "orchestra.cli", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL, start_new_session=True)


def merges_of(repo: Path, run_id: str) -> list[str]:
    """Merge commits on main that accepted run_id."""
    out = git(repo, "log", "--merges", "--format=%H", f"--grep=^Orchestra-Run: {run_id}$", "main")
    return out.split()


def journal_is_empty(fleet: Fleet) -> bool:
    return not list(fleet.journal.dir.glob("*.json")) if fleet.journal.dir.is_dir() else True


def assert_converged_accept(fleet: Fleet, repo: Path, run_id: str) -> bool:
    """The invariant: merged iff exactly one accept entry, and the run agrees. Returns whether it merged."""
    merges = merges_of(repo, run_id)
    accepts = [e for e in fleet.ledger.entries() if e["action"] == "accept" and e["run"] == run_id]
    run = fleet.get(run_id)
    assert len(merges) <= 1 and len(accepts) == len(merges), (merges, accepts)
    if merges:
        assert accepts[0]["merge_commit"] == merges[0] and run.state == "accepted" and run.merge_commit == merges[0]
        trailer = git(repo, "log", "-1", "--format=%(trailers:key=Orchestra-Decision,valueonly)", merges[0])
        assert trailer.strip() == accepts[0]["decision"] == run.decision["id"]
        assert json.loads(git(repo, "notes", "--ref=orchestra", "show", merges[0])) == accepts[0]  # the sign-off
    else:
        assert run.state == "review" and run.decision is None
    assert journal_is_empty(fleet)
    assert orchestra(repo, "ledger", "verify").returncode == 0
    return bool(merges)


def test_every_declared_decision_point_is_tested_here() -> None:
    assert set(POINTS["accept"] + POINTS["reject"] + POINTS["redirect"] + POINTS["revert"]
               + POINTS["advance"]) == FAULT_POINTS


POINTS = {action: [f"{action}.{step}" for step in steps] for action, steps in STEPS.items()}


@pytest.mark.parametrize("point", POINTS["accept"])
def test_accept_killed_at_each_step_converges_and_never_merges_twice(
        repo: Path, make_fleet: MakeFleet, point: str) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)

    killed = orchestra(repo, "accept", run_id, fault=point)
    assert killed.returncode == KILLED, killed.stderr

    listed = orchestra(repo, "runs")  # any command converges first
    assert listed.returncode == 0, listed.stderr
    merged = assert_converged_accept(fleet, repo, run_id)
    assert merged == (point != "accept.journalled")
    if merged and point == "accept.merged":
        assert fleet.ledger.entries()[-1].get("recovered") is True
    if not merged:
        assert any("interrupted before the merge" in e.get("text", "") for e in events(fleet, run_id, "note"))

    retry = orchestra(repo, "accept", run_id)
    assert (retry.returncode, "already accepted" in retry.stderr) == ((1, True) if merged else (0, False)), retry
    assert_converged_accept(fleet, repo, run_id)
    assert len(merges_of(repo, run_id)) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert not Path(fleet.get(run_id).worktree).exists()


def test_a_reject_after_an_accept_killed_past_its_merge_is_refused(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)
    assert orchestra(repo, "accept", run_id, fault="accept.merged").returncode == KILLED

    refused = orchestra(repo, "reject", run_id, "--reason", "too late")

    assert refused.returncode == 1 and "already accepted" in refused.stderr
    assert [e["action"] for e in fleet.ledger.entries()] == ["accept"]
    assert_converged_accept(fleet, repo, run_id)


@pytest.mark.parametrize("point", POINTS["reject"])
def test_reject_killed_at_each_step_is_completed_once(repo: Path, make_fleet: MakeFleet, point: str) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)
    main = git(repo, "rev-parse", "main")

    assert orchestra(repo, "reject", run_id, "--reason", "wrong", fault=point).returncode == KILLED
    assert orchestra(repo, "runs").returncode == 0

    run = fleet.get(run_id)
    rejects = [e for e in fleet.ledger.entries() if e["action"] == "reject"]
    assert run.state == "rejected" and len(rejects) == 1 and rejects[0]["reason"] == "wrong"
    assert rejects[0].get("recovered") is (True if point == "reject.journalled" else None)
    assert run.decision["id"] == rejects[0]["decision"] and journal_is_empty(fleet)
    assert not Path(run.worktree).exists() and git(repo, "rev-parse", "main") == main
    retry = orchestra(repo, "reject", run_id)
    assert retry.returncode == 1 and "already rejected" in retry.stderr
    assert len([e for e in fleet.ledger.entries() if e["action"] == "reject"]) == 1
    assert orchestra(repo, "ledger", "verify").returncode == 0


def reverts_of(repo: Path, run_id: str) -> list[str]:
    """Revert commits on main that undid run_id's merge."""
    out = git(repo, "log", "--format=%H", "--grep=^Orchestra-Revert: ", f"--grep=^Orchestra-Run: {run_id}$",
              "--all-match", "main")
    return out.split()


def assert_converged_revert(fleet: Fleet, repo: Path, run_id: str) -> bool:
    """The invariant: reverted on main iff exactly one revert entry, and the run agrees. Returns whether."""
    reverts = reverts_of(repo, run_id)
    entries = [e for e in fleet.ledger.entries() if e["action"] == "revert" and e["run"] == run_id]
    run = fleet.get(run_id)
    assert len(reverts) <= 1 and len(entries) == len(reverts), (reverts, entries)
    assert run.state == "accepted"
    if reverts:
        assert entries[0]["revert_commit"] == reverts[0] and run.reverted["commit"] == reverts[0]
        assert run.reverted["id"] == entries[0]["decision"] and not (repo / "work.txt").exists()
    else:
        assert run.reverted is None and (repo / "work.txt").exists()
    assert journal_is_empty(fleet)
    assert orchestra(repo, "ledger", "verify").returncode == 0
    return bool(reverts)


@pytest.mark.parametrize("point", POINTS["revert"])
def test_revert_killed_at_each_step_converges_and_never_reverts_twice(
        repo: Path, make_fleet: MakeFleet, point: str) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)
    fleet.accept(run_id)

    killed = orchestra(repo, "revert", run_id, "--reason", "undo", fault=point)
    assert killed.returncode == KILLED, killed.stderr

    assert orchestra(repo, "runs").returncode == 0  # any command converges first
    reverted = assert_converged_revert(fleet, repo, run_id)
    assert reverted == (point != "revert.journalled")
    if point == "revert.reverted":
        assert fleet.ledger.entries()[-1].get("recovered") is True
    if not reverted:
        assert any("interrupted before it reached main" in e.get("text", "") for e in events(fleet, run_id, "note"))

    retry = orchestra(repo, "revert", run_id)
    assert (retry.returncode, "already reverted" in retry.stderr) == ((1, True) if reverted else (0, False)), retry
    assert_converged_revert(fleet, repo, run_id)
    assert len(reverts_of(repo, run_id)) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("point", POINTS["redirect"])
def test_redirect_killed_at_each_step_is_completed_once(repo: Path, make_fleet: MakeFleet, point: str) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)

    assert orchestra(repo, "redirect", run_id, "-m", "second pass", fault=point).returncode == KILLED
    assert orchestra(repo, "runs").returncode == 0

    redirects = [e for e in fleet.ledger.entries() if e["action"] == "redirect"]
    assert len(redirects) == 1 and redirects[0]["instruction"] == "second pass" and journal_is_empty(fleet)
    run = wait_settled(fleet, run_id)
    assert run.state == "review" and run.redirects == ["second pass"], run.message
    assert git(repo, "show", f"{run.candidate}:work.txt") == "first pass\nsecond pass"
    assert orchestra(repo, "ledger", "verify").returncode == 0


@pytest.mark.parametrize("point", POINTS["advance"])
def test_a_plan_approval_killed_at_each_step_is_completed_once(repo: Path, make_fleet: MakeFleet, point: str) -> None:
    """`orchestra accept` on a run whose workflow waits for its plan's approval, killed at each step: the next
    command completes it, one advance entry with the plan's hash, and the next stage runs."""
    from tests.core.test_workflows import at_stage, full_fleet
    fleet = full_fleet(make_fleet, repo)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")

    assert orchestra(repo, "accept", run_id, fault=point).returncode == KILLED
    assert orchestra(repo, "runs").returncode == 0

    advances = [e for e in fleet.ledger.entries() if e["action"] == "advance"]
    assert len(advances) == 1 and advances[0]["stage"] == "plan" and journal_is_empty(fleet)
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.state == "review" and run.workflow["status"] == "done", run.message
    assert run.workflow["plan"]["ledger_hash"] == advances[0]["hash"]
    assert orchestra(repo, "ledger", "verify").returncode == 0


def test_ctrl_c_during_accept_finishes_the_decision_and_leaves_the_checkout_whole(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)

    interrupted = orchestra(repo, "accept", run_id, fault="accept.journalled:INT")

    assert interrupted.returncode == 130, interrupted.stderr  # the interrupt is honoured once the accept is done
    assert assert_converged_accept(fleet, repo, run_id)
    assert (repo / "work.txt").read_text() == "first pass\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_decision_under_way_is_not_recovered_by_another_command(repo: Path, make_fleet: MakeFleet) -> None:
    """The decide lock is what tells a crashed decision from one in progress: while it is held, a second
    command neither completes nor rolls back the journal entry."""
    fleet, run_id = fleet_in_review(make_fleet, repo)
    fleet.journal.begin({"id": "f" * 32, "action": "accept", "run": run_id, "target": "main",
                         "target_before": git(repo, "rev-parse", "main"), "merge_commit": "0" * 40, "fields": {}})
    from orchestra.core.base.files import file_lock
    with file_lock(fleet.decisions.lock_path):
        assert orchestra(repo, "runs").returncode == 0
        assert not journal_is_empty(fleet)
    assert orchestra(repo, "runs").returncode == 0
    assert journal_is_empty(fleet)  # rolled back: that merge commit is on no branch
    assert wait_state(fleet, run_id, "review").decision is None


LEDGER_POINTS = sorted(point for point in faults.POINTS if point.startswith("ledger."))


def test_the_ledgers_own_points_are_all_exercised_inside_a_decision() -> None:
    assert LEDGER_POINTS == ["ledger.after-anchor", "ledger.after-head", "ledger.after-line", "ledger.after-pending"]


@pytest.mark.parametrize("point", LEDGER_POINTS)
def test_accept_killed_inside_its_ledger_append_records_it_exactly_once(
        repo: Path, make_fleet: MakeFleet, point: str) -> None:
    fleet, run_id = fleet_in_review(make_fleet, repo)

    assert orchestra(repo, "accept", run_id, fault=point).returncode == KILLED
    assert orchestra(repo, "runs").returncode == 0

    assert assert_converged_accept(fleet, repo, run_id)
    assert len([e for e in fleet.ledger.entries() if e["action"] == "accept"]) == 1
    assert not fleet.ledger.pending_path.exists()
