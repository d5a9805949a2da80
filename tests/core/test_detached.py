"""Runs outlive whoever started them, and a killed supervisor leaves a recoverable run."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, processes_with, score_text, wait_for, wait_output, wait_settled, wait_state


def test_a_run_spawned_by_a_cli_process_that_exits_at_once_still_reaches_review(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"slow": "sleep 2; echo done > done.txt"},
                                        [{"id": "work", "intent": "take your time"}]))
    done = cli("-C", str(repo), "spawn", "work")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert run_id == "r1"

    run = fleet.get(run_id)
    # The CLI is gone while the agent still works: it did not wait for the run.
    assert run.state in ("queued", "working"), run.state
    assert not (Path(run.worktree) / "done.txt").exists()
    supervisor = wait_for(lambda: fleet.get(run_id).supervisor_pid, message="the supervisor to record its pid")
    assert supervisor_alive(fleet.get(run_id))
    assert os.getsid(supervisor) == supervisor  # its own session: a closing terminal does not end it

    run = wait_settled(fleet, run_id)
    assert run.state == "review", run.message
    assert git(repo, "show", f"{run.candidate}:done.txt") == "done"
    assert supervisor_alive(run)  # it stays to watch the worktree during review


def test_a_killed_supervisor_fails_the_run_without_losing_work_and_redirect_restarts_it(
        repo: Path, make_fleet: MakeFleet) -> None:
    marker = f"30.{uuid.uuid4().int % 10**6:06d}"
    command = ('if [ -n "$ORCHESTRA_REDIRECT" ]; then echo "$ORCHESTRA_REDIRECT" > redo.txt; '
               f'else echo partial > partial.txt; echo started; sleep {marker}; fi')
    fleet = make_fleet(repo, score_text({"coder": command}, [{"id": "work", "intent": "work"}]))
    run = fleet.spawn("work")[0]
    wait_output(fleet, run.id, "started")
    run = fleet.get(run.id)
    assert run.state == "working" and run.supervisor_pid and run.agent_pgid
    assert processes_with(marker)

    os.kill(run.supervisor_pid, signal.SIGKILL)

    run = wait_state(fleet, run.id, "failed")
    assert "supervisor for this run is gone" in run.message and run.branch in run.message
    assert [r.state for r in fleet.runs()] == ["failed"]
    assert fleet.store.load(run.id).state == "failed"  # persisted, so every other view agrees
    worktree = Path(run.worktree)
    assert (worktree / "partial.txt").read_text() == "partial\n"
    assert git(repo, "rev-parse", "--verify", run.branch)
    assert str(worktree) in git(repo, "worktree", "list", "--porcelain")

    run = fleet.redirect(run.id, "carry on")

    assert run.state == "working"
    wait_for(lambda: not processes_with(marker), timeout=10, message="the orphaned agent to be stopped")
    run = wait_settled(fleet, run.id)
    assert run.state == "review", run.message
    assert git(repo, "show", f"{run.candidate}:partial.txt") == "partial"
    assert git(repo, "show", f"{run.candidate}:redo.txt") == "carry on"
    assert supervisor_alive(run)
