"""Every process a run starts is accounted for, in the sandbox and without it: daemons and double forks
end with the agent's turn, a stop and a reject; a killed supervisor interrupts its run and takes its agent
with it; a child holding the agent's output does not keep the run working; a stale pid is never killed."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused
from orchestra.core.git.worktrees import agent_identity
from orchestra.core.jail import probe
from orchestra.core.runs.run import Run
from orchestra.core.supervise.processes import end_agent_leftovers, stop_supervisor
from orchestra.core.supervise.reaper import read_proc, start_time
from tests.conftest import git
from tests.core import test_llm_agent as llm_agent
from tests.core.conftest import MakeFleet
from tests.core.helpers import (
    processes_with,
    score_text,
    wait_for,
    wait_output,
    wait_settled,
)
from tests.harness.fake_openai import FakeOpenAI, text

SANDBOXES = [pytest.param("auto", marks=pytest.mark.skipif(not probe().works, reason="needs bubblewrap")), "off"]


def markers(count: int) -> list[str]:
    """Durations only this test sleeps for: its processes are found by them."""
    unique = uuid.uuid4().int % 10**6
    return [f"{30 + i}.{unique:06d}" for i in range(count)]


def leave_behind(daemon: str, orphan: str) -> str:
    """Shell that starts a setsid daemon and a double-forked child (neither holding the agent's output)
    and waits until both run, so ending them is not a race with their start."""
    quiet = ">/dev/null 2>&1 </dev/null"
    return (f"setsid sleep {daemon} {quiet} & (sleep {orphan} {quiet} &); "
            f"until pgrep -f '^sleep {daemon}' >/dev/null && pgrep -f '^sleep {orphan}' >/dev/null; "
            "do sleep 0.05; done; ")


def alive(*marks: str) -> list[tuple[int, str]]:
    return [found for mark in marks for found in processes_with(mark)]


def sleeping(mark: str) -> list[tuple[int, str]]:
    """The `sleep` processes of a marker (the agent's shell, whose command line names it too, left out)."""
    return [found for found in processes_with(mark) if found[1].startswith("sleep ")]


def gone(pid: int, start: int | None) -> bool:
    proc = read_proc(pid)
    return proc is None or proc.start != start or not proc.live


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_what_an_agent_leaves_running_ends_with_its_turn(repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    daemon, orphan = markers(2)
    fleet = make_fleet(repo, score_text({"coder": leave_behind(daemon, orphan) + "echo done > done.txt"},
                                        [{"id": "work", "intent": "leave things running"}], sandbox=sandbox))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    assert run.state == "review", run.message
    assert not alive(daemon, orphan)  # ended before the work was committed, not some time later
    assert git(repo, "show", f"{run.candidate}:done.txt") == "done"
    assert run.agent_pgid is None and run.agent_start is None  # no stale pid is left to be killed later


@pytest.mark.parametrize("decision", ["stop", "reject"])
@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_stop_or_a_reject_ends_everything_the_agent_started(
        repo: Path, make_fleet: MakeFleet, sandbox: str, decision: str) -> None:
    daemon, orphan, agent = markers(3)
    fleet = make_fleet(repo, score_text({"coder": leave_behind(daemon, orphan) + f"echo started; sleep {agent}"},
                                        [{"id": "work", "intent": "work"}], sandbox=sandbox))
    run = fleet.spawn("work")[0]
    wait_output(fleet, run.id, "started")
    assert sleeping(daemon) and sleeping(orphan)

    if decision == "stop":
        assert fleet.stop(run.id).state == "stopped"
    else:
        assert fleet.reject(run.id, "no").state == "rejected"

    assert not alive(daemon, orphan, agent)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_killed_supervisor_interrupts_the_run_ends_its_agent_and_reject_commits_the_work_as_the_agent(
        repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    daemon, orphan, agent = markers(3)
    command = "echo partial > partial.txt; " + leave_behind(daemon, orphan) + f"echo started; sleep {agent}"
    fleet = make_fleet(repo, score_text({"coder": command}, [{"id": "work", "intent": "work"}], sandbox=sandbox))
    run = fleet.spawn("work")[0]
    wait_output(fleet, run.id, "started")
    run = fleet.store.load(run.id)
    assert run.agent_pgid and run.agent_start == start_time(run.agent_pgid)

    os.kill(run.supervisor_pid, signal.SIGKILL)

    # The agent dies with its supervisor (bwrap --die-with-parent, or its PR_SET_PDEATHSIG) ...
    wait_for(lambda: gone(run.agent_pgid, run.agent_start), timeout=10, message="the agent to die with its supervisor")
    if sandbox != "off":  # ... and in the sandbox everything it started goes with it at once
        wait_for(lambda: not alive(daemon, orphan, agent), timeout=10, message="the sandbox's processes to end")

    interrupted = fleet.get(run.id)  # the next orchestra command at the latest ends what is left

    assert not alive(daemon, orphan, agent)
    assert interrupted.state == "interrupted"
    assert "committed as the agent" in interrupted.message and "is committed on" not in interrupted.message
    assert interrupted.agent_pgid is None
    with pytest.raises(ActionRefused, match="interrupted"):
        fleet.stop(run.id)  # nothing is left to stop, and it says why

    rejected = fleet.reject(run.id, "start over")

    assert rejected.state == "rejected"
    assert git(repo, "show", f"{run.branch}:partial.txt") == "partial"
    author = git(repo, "log", "-1", "--format=%an <%ae>", run.branch)
    identity = agent_identity("coder")
    assert author == f"{identity['GIT_AUTHOR_NAME']} <{identity['GIT_AUTHOR_EMAIL']}>"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_background_child_holding_the_agents_output_does_not_keep_the_run_working(
        repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    holder, = markers(1)
    fleet = make_fleet(repo, score_text({"quick": {"command": f"echo done > done.txt; echo bye; sleep {holder} &",
                                                   "timeout": 60}},
                                        [{"id": "work", "intent": "leave a child on stdout"}], sandbox=sandbox))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=20)

    assert run.state == "review", run.message
    assert not alive(holder)
    assert "bye" in [e["text"] for e in fleet.store.read_events(run.id)[0] if e.get("type") == "output"]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_stale_agent_pid_now_naming_another_process_is_not_killed(
        repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    agent, stranger = markers(2)
    fleet = make_fleet(repo, score_text({"coder": f"echo started; sleep {agent}"}, [{"id": "work", "intent": "w"}],
                                        sandbox=sandbox))
    run = fleet.spawn("work")[0]
    wait_output(fleet, run.id, "started")
    # An unrelated process that leads its own group and session, as a process that reused the pid would.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORCHESTRA_")}
    unrelated = subprocess.Popen(["sleep", stranger], start_new_session=True, env=env)
    try:
        real = start_time(unrelated.pid)
        assert real is not None
        os.kill(fleet.store.load(run.id).supervisor_pid, signal.SIGKILL)
        # The record now names the unrelated process, with the start time of the agent it replaced.
        fleet.store.set(run.id, agent_pgid=unrelated.pid, agent_start=max(0, real - 100))

        assert fleet.get(run.id).state == "interrupted"

        assert unrelated.poll() is None, "an unrelated process was killed"
        assert not alive(agent)  # the agent's own processes were still found (by the run's variables)
    finally:
        unrelated.kill()
        unrelated.wait()


def test_stop_supervisor_kills_a_recorded_agent_only_while_its_start_time_matches(tmp_path: Path) -> None:
    stranger, = markers(1)
    unrelated = subprocess.Popen(["sleep", stranger], start_new_session=True)
    try:
        start = start_time(unrelated.pid)
        assert start is not None
        run = Run(id="r1", agent="a", spec=None, task="t", branch="b", worktree=str(tmp_path), base="0",
                  target="main", agent_config={}, spec_config=None, state="working", agent_pgid=unrelated.pid)
        for wrong in (None, start - 1, start + 1):
            stop_supervisor(dataclasses.replace(run, agent_start=wrong))
            assert unrelated.poll() is None, f"killed with a recorded start time of {wrong}"

        end_agent_leftovers(dataclasses.replace(run, agent_start=start))

        assert unrelated.wait(timeout=5) == -signal.SIGKILL
    finally:
        unrelated.kill()
        unrelated.wait()


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_the_llm_host_an_agent_started_outlives_the_turn_and_the_supervisor(
        repo: Path, make_fleet: MakeFleet, llm_host_socket: Path, monkeypatch: pytest.MonkeyPatch,
        sandbox: str) -> None:
    """It serves every run: ending what a run left running never ends it."""
    monkeypatch.setenv("FAKE_PROVIDER_KEY", llm_agent.KEY)
    with FakeOpenAI() as server:
        server.script(text("Nothing to change."))
        fleet = make_fleet(repo, f'[orchestra]\nsandbox = "{sandbox}"\n\n' + llm_agent.score(server.url))
        run = wait_settled(fleet, fleet.spawn("fix")[0].id, timeout=60)
        assert run.state == "review", run.message
        hosts = processes_with(f"orchestra.llm.llm_host {llm_host_socket}")
        assert len(hosts) == 1, hosts

        fleet.reject(run.id, "done")

        assert processes_with(f"orchestra.llm.llm_host {llm_host_socket}") == hosts


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_gates_background_child_holding_its_output_does_not_keep_it_running(
        repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    (mark,) = markers(1)
    fleet = make_fleet(repo, score_text({"quick": "echo x > x.txt"}, [{"id": "work", "intent": "x", "verify": [
        {"name": "leaves", "command": f"echo checked; sleep {mark} &", "timeout": 120}]}], sandbox=sandbox))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=30)  # not the gate's 120 s timeout
    gate = run.gates["leaves"]
    assert gate.status == "passed" and gate.finished - gate.started < 10, gate
    assert not sleeping(mark)
