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


def test_a_killed_supervisor_interrupts_the_run_without_losing_work_and_redirect_restarts_it(
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

    run = wait_state(fleet, run.id, "interrupted")
    assert "supervisor for this run is gone" in run.message and run.branch in run.message
    assert "committed as the agent" in run.message  # not "committed" already: the supervisor died first
    assert [r.state for r in fleet.runs()] == ["interrupted"]
    assert fleet.store.load(run.id).state == "interrupted"  # persisted, so every other view agrees
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


def test_a_supervisor_started_under_the_old_module_path_is_still_recognised(tmp_path: Path) -> None:
    """Supervisors an older orchestra started run as `python -m orchestra.core.supervisor`."""
    import subprocess
    import sys

    from orchestra.core.runs.run import Run
    from orchestra.core.supervise.processes import supervisor_alive
    old = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "orchestra.core.supervisor",
                            str(tmp_path), "r7", "--mode", "watch"])
    try:
        run = Run(id="r7", agent="a", spec=None, task="t", branch="b", worktree="/w", base="0", target="main",
                  agent_config={}, spec_config=None, supervisor_pid=old.pid)
        wait_for(lambda: supervisor_alive(run), timeout=10, message="the old-style supervisor to be recognised")
    finally:
        old.kill()
        old.wait()
    stand_in = subprocess.run([sys.executable, "-m", "orchestra.core.supervisor", "--help"], capture_output=True,
                              text=True, timeout=30)
    assert stand_in.returncode == 0 and "orchestra-supervisor" in stand_in.stdout
