"""Decisions on runs: accept (a safe, recorded merge), reject, redirect and stop."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from orchestra.core.git import diffs
from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.git.merge import NothingToMerge
from orchestra.core.ledger.chain import GENESIS
from orchestra.core.policy import NotReady
from orchestra.core.supervise.processes import supervisor_alive
from orchestra.core.runs.run import Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import events, ledger_lines, notes, processes_with, score_text, wait_for, wait_output
from tests.core.helpers import wait_settled, wait_state

ACTOR = "Test Conductor <conductor@example.test>"
FIX = "printf 'def answer():\\n    return 42\\n' > src/app.py"
ORIGINAL = "def answer():\n    return 41\n"
FIXED = "def answer():\n    return 42\n"


def fix_fleet(make_fleet: MakeFleet, repo: Path, command: str = FIX) -> Fleet:
    return make_fleet(repo, score_text({"coder": command}, [
        {"id": "fix", "intent": "Make answer() return 42", "allow": ["src/**"],
         "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))


def reviewed(fleet: Fleet, spec: str = "fix") -> Run:
    run = wait_settled(fleet, fleet.spawn(spec)[0].id)
    assert run.state == "review", run.message
    return run


def sleeper(marker: str) -> str:
    """An agent that leaves work in progress, says so, and then works for a long time (until redirected)."""
    return ('if [ -n "$ORCHESTRA_REDIRECT" ]; then echo "$ORCHESTRA_REDIRECT" > redirected.txt; '
            f'else echo wip > wip.txt; echo started; sleep {marker}; fi')


def new_marker() -> str:
    return f"30.{uuid.uuid4().int % 10**6:06d}"


def snapshot_of(repo: Path, run: Run) -> dict[str, object]:
    """Everything a refused decision must leave as it was."""
    worktree = Path(run.worktree)
    return {
        "main": git(repo, "rev-parse", "main"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "app": (repo / "src" / "app.py").read_text(),
        "branch": git(repo, "rev-parse", run.branch),
        "worktree_files": {str(p.relative_to(worktree)): p.read_bytes() for p in worktree.rglob("*")
                           if p.is_file() and ".git" not in p.parts},
    }


def assert_nothing_changed(fleet: Fleet, repo: Path, run: Run, before: dict[str, object]) -> None:
    assert snapshot_of(repo, run) == before
    current = fleet.get(run.id)
    assert current.state == "review" and current.candidate == run.candidate and current.decision is None
    assert ledger_lines(fleet) == []
    # Its supervisor is back, watching the worktree.
    wait_for(lambda: supervisor_alive(fleet.get(run.id)), timeout=10, message="the watcher to be resumed")


# -- accept ------------------------------------------------------------------------------------

def test_accept_merges_with_a_signed_merge_commit_records_it_and_removes_the_worktree(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    run = reviewed(fleet)
    assert run.gates["check"].status == "passed"
    before = git(repo, "rev-parse", "main")

    accepted = fleet.accept(run.id)

    assert accepted.state == "accepted"
    merge = git(repo, "rev-parse", "main")
    assert accepted.merge_commit == merge != before
    assert git(repo, "rev-parse", f"{merge}^1") == before and git(repo, "rev-parse", f"{merge}^2") == run.candidate
    message = git(repo, "log", "-1", "--format=%B", merge)
    assert message.startswith(f"Accept orchestra run {run.id}: fix by coder")
    for line in (f"Orchestra-Run: {run.id}", "Orchestra-Spec: fix", "Orchestra-Agent: coder", f"Accepted-By: {ACTOR}"):
        assert line in message.splitlines()
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", merge) == f"{ACTOR}|{ACTOR}"
    # The user's checkout moved with its branch, and is clean.
    assert (repo / "src" / "app.py").read_text() == FIXED
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    # The worktree is gone, the branch stays.
    assert not Path(run.worktree).exists()
    assert git(repo, "rev-parse", run.branch) == run.candidate
    assert str(run.worktree) not in git(repo, "worktree", "list", "--porcelain")

    entries = fleet.ledger.entries()
    assert len(entries) == 1
    entry = entries[0]
    assert {k: entry[k] for k in ("action", "run", "actor", "agent", "spec", "target", "base", "candidate",
                                   "merge_commit", "prev", "seq")} == {
        "action": "accept", "run": run.id, "actor": ACTOR, "agent": "coder", "spec": "fix", "target": "main",
        "base": before, "candidate": run.candidate, "merge_commit": merge, "prev": GENESIS, "seq": 0}
    patch = diffs.unified_diff(repo, run.base, run.candidate)
    assert entry["diff_sha256"] == hashlib.sha256(patch.encode()).hexdigest()
    assert entry["spec_hash"] == fleet.score.spec("fix").content_hash()
    assert entry["files"] == ["src/app.py"] and entry["tree"] == run.tree
    assert {g["name"]: (g["status"], g["tree"], g["stale"]) for g in entry["gates"]} == {
        "boundary": ("passed", run.tree, False), "secrets": ("passed", run.tree, False),
        "check": ("passed", run.tree, False)}
    assert len(entry["hash"]) == 64 and accepted.decision["ledger_hash"] == entry["hash"]
    assert fleet.ledger.verify().ok
    assert [e["state"] for e in events(fleet, run.id, "state")][-1] == "accepted"

    with pytest.raises(ActionRefused, match="already accepted"):
        fleet.accept(run.id)


def test_accept_moves_a_target_branch_that_is_not_checked_out(repo: Path, make_fleet: MakeFleet) -> None:
    git(repo, "branch", "release")
    fleet = make_fleet(repo, score_text({"coder": FIX}, [{"id": "fix", "intent": "x"}], target="release"))
    git(repo, "branch", "-f", "release", "main")  # the score commit is on main; take it along
    run = reviewed(fleet)
    assert run.target == "release"
    main_before = git(repo, "rev-parse", "main")

    accepted = fleet.accept(run.id)

    assert git(repo, "rev-parse", "release") == accepted.merge_commit
    assert git(repo, "show", "release:src/app.py") == FIXED.rstrip("\n")
    assert git(repo, "rev-parse", "main") == main_before and (repo / "src" / "app.py").read_text() == ORIGINAL


def test_accept_is_refused_while_the_agent_works_or_after_it_failed(repo: Path, make_fleet: MakeFleet) -> None:
    marker = new_marker()
    fleet = make_fleet(repo, score_text({"slow": sleeper(marker), "broken": "exit 1"},
                                        [{"id": "fix", "intent": "x"}]))
    slow, broken = fleet.spawn("fix")
    wait_output(fleet, slow.id, "started")
    main = git(repo, "rev-parse", "main")

    with pytest.raises(ActionRefused, match="still working"):
        fleet.accept(slow.id)
    assert wait_state(fleet, broken.id, "failed").state == "failed"
    with pytest.raises(ActionRefused, match="only a run in review can be accepted"):
        fleet.accept(broken.id)

    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []
    assert fleet.get(slow.id).state == "working" and processes_with(marker)


def test_a_not_ready_accept_names_each_gate_as_a_gate(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"coder": FIX}, [
        {"id": "fix", "intent": "x", "verify": [{"name": "PYTHONPATH-src", "command": "exit 1"}]}]))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)

    with pytest.raises(NotReady) as refused:
        fleet.accept(run.id)

    assert "  • gate PYTHONPATH-src failed: " in str(refused.value), str(refused.value)
    assert " is failed" not in str(refused.value)


OVERLAPS = {  # what the agent does, and the file the user has uncommitted changes in
    "modified": (FIX, "app.py"),
    "untracked": ("echo agent > src/new.py", "new.py"),
    "renamed-away": ("mv src/app.py src/main.py", "app.py"),
}


@pytest.mark.parametrize("overlap", list(OVERLAPS), ids=list(OVERLAPS))
def test_accept_is_refused_when_the_checkout_has_uncommitted_changes_the_merge_touches(
        repo: Path, make_fleet: MakeFleet, overlap: str) -> None:
    command, name = OVERLAPS[overlap]
    fleet = fix_fleet(make_fleet, repo, command)
    run = reviewed(fleet)
    dirty = repo / "src" / name
    dirty.write_text("the user's own unsaved work\n")
    before = snapshot_of(repo, run)

    with pytest.raises(ActionRefused) as refused:
        fleet.accept(run.id, force=True)  # the gates are not the point here: the checkout is

    text = str(refused.value)
    assert "uncommitted changes" in text and f"src/{dirty.name}" in text and "Nothing was changed" in text
    assert dirty.read_text() == "the user's own unsaved work\n"
    assert_nothing_changed(fleet, repo, run, before)


def test_accept_goes_ahead_when_the_uncommitted_changes_are_elsewhere(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    run = reviewed(fleet)
    (repo / "README.md").write_text("# my notes, not committed\n")
    (repo / "scratch.txt").write_text("untracked\n")

    accepted = fleet.accept(run.id)

    assert accepted.state == "accepted" and git(repo, "rev-parse", "main") == accepted.merge_commit
    assert (repo / "src" / "app.py").read_text() == FIXED
    assert (repo / "README.md").read_text() == "# my notes, not committed\n"
    assert (repo / "scratch.txt").read_text() == "untracked\n"
    assert sorted(line.strip() for line in git(repo, "status", "--porcelain").splitlines()) == [
        "?? scratch.txt", "M README.md"]


def test_accept_is_refused_on_a_conflict_with_the_target_naming_the_file(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    run = reviewed(fleet)
    (repo / "src" / "app.py").write_text("def answer():\n    return 43\n")
    git(repo, "commit", "-q", "-am", "the user's own answer")
    before = snapshot_of(repo, run)

    with pytest.raises(ActionRefused, match=r"conflict with the target branch in: src/app\.py") as refused:
        fleet.accept(run.id)

    assert "Nothing was changed" in str(refused.value)
    assert_nothing_changed(fleet, repo, run, before)
    assert not (repo / ".git" / "MERGE_HEAD").exists()


def test_accepting_a_change_the_target_already_holds_makes_no_merge_and_says_why(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    first, second = (wait_settled(fleet, run.id) for run in fleet.spawn("fix", ["coder", "coder"]))
    fleet.accept(first.id, actor=ACTOR)
    tip = git(repo, "rev-parse", "main")

    with pytest.raises(NothingToMerge) as refused:
        fleet.accept(second.id, actor=ACTOR)

    assert refused.value.why == "merging this run would not change main (it holds these changes already)"
    assert str(refused.value).startswith(f"Nothing to merge: {refused.value.why}. Nothing was merged or recorded")
    assert git(repo, "rev-parse", "main") == tip and git(repo, "status", "--porcelain") == ""
    assert [e["action"] for e in fleet.ledger.entries()] == ["accept"] and fleet.ledger.verify().ok
    assert fleet.get(second.id).state == "review"
    wait_for(lambda: supervisor_alive(fleet.get(second.id)), timeout=10, message="the watcher to be resumed")
    assert fleet.reject(second.id, "already on main", actor=ACTOR).state == "rejected"
    assert fleet.ledger.verify().ok


def test_accept_is_refused_when_the_run_changed_since_the_conductor_looked(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    run = reviewed(fleet)
    looked_at = run.candidate
    (Path(run.worktree) / "src" / "extra.py").write_text("# edited after the review\n")
    main = git(repo, "rev-parse", "main")

    with pytest.raises(ActionRefused, match="changed since you looked at it"):
        fleet.accept(run.id, expected_candidate=looked_at)

    assert git(repo, "rev-parse", "main") == main and ledger_lines(fleet) == []
    current = wait_settled(fleet, run.id)
    assert current.state == "review" and current.candidate != looked_at
    assert git(repo, "show", f"{current.candidate}:src/extra.py") == "# edited after the review"
    # Accepting what is there now works, and merges the late edit too.
    accepted = fleet.accept(run.id, expected_candidate=current.candidate)
    assert (repo / "src" / "extra.py").read_text() == "# edited after the review\n"
    assert fleet.ledger.entries()[0]["candidate"] == current.candidate == git(repo, "rev-parse",
                                                                               f"{accepted.merge_commit}^2")


# -- reject ------------------------------------------------------------------------------------

def test_reject_stops_a_working_agent_keeps_its_work_on_the_branch_and_records_why(
        repo: Path, make_fleet: MakeFleet) -> None:
    marker = new_marker()
    fleet = make_fleet(repo, score_text({"coder": sleeper(marker)}, [{"id": "fix", "intent": "x"}]))
    run = fleet.spawn("fix")[0]
    wait_output(fleet, run.id, "started")
    main = git(repo, "rev-parse", "main")

    rejected = fleet.reject(run.id, "wrong approach")

    assert rejected.state == "rejected"
    wait_for(lambda: not processes_with(marker), timeout=10, message="the agent to be stopped")
    assert not Path(run.worktree).exists()
    assert git(repo, "show", f"{run.branch}:wip.txt") == "wip"
    assert git(repo, "log", "-1", "--format=%an", run.branch) == "coder (orchestra agent)"
    assert git(repo, "rev-parse", "main") == main
    entry = fleet.ledger.entries()[-1]
    assert (entry["action"], entry["run"], entry["actor"], entry["reason"]) == ("reject", run.id, ACTOR,
                                                                                "wrong approach")
    assert entry["candidate"] == git(repo, "rev-parse", run.branch) and entry["files"] == ["wip.txt"]
    assert rejected.decision["reason"] == "wrong approach"
    assert fleet.ledger.verify().ok
    with pytest.raises(ActionRefused, match="already rejected"):
        fleet.reject(run.id)
    with pytest.raises(ActionRefused, match="already rejected"):
        fleet.redirect(run.id, "try again")


def test_reject_of_a_run_in_review_with_no_reason(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    run = reviewed(fleet)

    rejected = fleet.reject(run.id)

    assert rejected.state == "rejected" and not Path(run.worktree).exists()
    assert git(repo, "rev-parse", run.branch) == run.candidate
    assert (repo / "src" / "app.py").read_text() == ORIGINAL
    entries = fleet.ledger.entries()
    assert [(e["action"], e["reason"]) for e in entries] == [("reject", "")]
    assert fleet.ledger.verify().ok


# -- redirect and stop ------------------------------------------------------------------------

def test_redirect_sends_the_agent_back_to_work_on_top_of_what_it_did(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo, 'echo "${ORCHESTRA_REDIRECT:-first pass}" >> src/log.txt')
    run = reviewed(fleet)
    first = run.candidate

    redirected = fleet.redirect(run.id, "also log the second pass")

    assert redirected.state == "working"
    assert redirected.redirects == ["also log the second pass"]
    run = wait_settled(fleet, run.id)
    assert run.state == "review", run.message
    assert git(repo, "show", f"{run.candidate}:src/log.txt") == "first pass\nalso log the second pass"
    assert git(repo, "merge-base", "--is-ancestor", first, run.candidate) == ""  # (fails the test if not)
    assert [e["state"] for e in events(fleet, run.id, "state")] == [
        "queued", "working", "review", "working", "working", "review"]
    assert "redirected: also log the second pass" in notes(fleet, run.id)
    entry = fleet.ledger.entries()[-1]
    assert (entry["action"], entry["run"], entry["instruction"], entry["candidate"]) == (
        "redirect", run.id, "also log the second pass", first)
    assert fleet.ledger.verify().ok
    with pytest.raises(ActionRefused, match="needs an instruction"):
        fleet.redirect(run.id, "   ")


def test_stop_ends_a_working_agent_commits_its_work_and_redirect_resumes_it(
        repo: Path, make_fleet: MakeFleet) -> None:
    marker = new_marker()
    fleet = make_fleet(repo, score_text({"coder": sleeper(marker)}, [{"id": "fix", "intent": "x"}]))
    run = fleet.spawn("fix")[0]
    wait_output(fleet, run.id, "started")

    stopped = fleet.stop(run.id)

    assert stopped.state == "stopped" and stopped.supervisor_pid is None
    wait_for(lambda: not processes_with(marker), timeout=10, message="the agent to be stopped")
    assert git(repo, "show", f"{run.branch}:wip.txt") == "wip"
    assert "(stopped)" in git(repo, "log", "-1", "--format=%s", run.branch)
    assert Path(run.worktree).is_dir()
    assert fleet.get(run.id).state == "stopped"
    assert ledger_lines(fleet) == []
    with pytest.raises(ActionRefused, match="not working"):
        fleet.stop(run.id)

    fleet.redirect(run.id, "finish up")
    run = wait_settled(fleet, run.id)
    assert run.state == "review"
    assert git(repo, "show", f"{run.candidate}:redirected.txt") == "finish up"
    assert git(repo, "show", f"{run.candidate}:wip.txt") == "wip"


def test_a_stop_is_logged_once_with_its_reason(repo: Path, make_fleet: MakeFleet) -> None:
    marker = new_marker()
    fleet = make_fleet(repo, score_text({"coder": sleeper(marker)}, [{"id": "fix", "intent": "x"}]))
    run = fleet.spawn("fix")[0]
    wait_output(fleet, run.id, "started")

    fleet.stop(run.id)

    logged = [e for e in events(fleet, run.id) if "stop" in f"{e.get('state')} {e.get('text')} {e.get('message')}"]
    assert [(e["type"], e.get("state"), e.get("message")) for e in logged] == [
        ("state", "stopped", "stopped by the conductor")], logged


def test_a_decision_the_ledger_cannot_record_is_refused_before_anything_changes(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = fix_fleet(make_fleet, repo)
    first, second = reviewed(fleet), reviewed(fleet)
    fleet.reject(first.id, "one entry")
    intact = fleet.ledger.path.read_bytes()
    fleet.ledger.path.write_bytes(intact[:-30] + b"\n")  # the last entry is garbled
    main = git(repo, "rev-parse", "main")
    try:
        for decide in (lambda: fleet.accept(second.id), lambda: fleet.reject(second.id, "no"),
                       lambda: fleet.redirect(second.id, "again")):
            with pytest.raises(ActionRefused, match=r"(?s)ledger cannot record this decision.*Nothing was changed"):
                decide()
            assert git(repo, "rev-parse", "main") == main
            current = fleet.get(second.id)
            assert current.state == "review" and current.decision is None and supervisor_alive(current)
            assert Path(second.worktree).is_dir()
    finally:
        fleet.ledger.path.write_bytes(intact)
    accepted = fleet.accept(second.id)
    assert git(repo, "rev-parse", "main") == accepted.merge_commit
    assert [e["action"] for e in fleet.ledger.entries()] == ["reject", "accept"] and fleet.ledger.verify().ok
