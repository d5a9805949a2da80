"""Runs on another host over real SSH (tests/harness/sshd.py: an sshd on 127.0.0.1 with an account of its own).

The run's worktree, agent and gates are at the host; its record, events, review, decisions and the ledger are
here. These tests start runs there, watch them stream, accept one, reject one, redirect and stop one, drop the
connection mid-run, fill every slot and queue one more, and look for keys on the host's side.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from orchestra.core.settings import settings_path
from tests.core.helpers import (events, ledger_lines, output_lines, score_text, wait_for, wait_settled, wait_state,
                                write_settings)
from tests.harness.sshd import SshHost

SPEC = {"id": "work", "intent": "write work.txt", "verify": [{"name": "check", "command": "test -s work.txt"}]}
WRITER = 'echo "${ORCHESTRA_REDIRECT:-first pass}" >> work.txt; echo wrote it'


@pytest.fixture
def box(ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch) -> str:
    """Settings with the ssh host as "box" (2 slots), its orchestra directory fresh for this test; its path."""
    ssh_host.use(monkeypatch)
    path = f"~/t-{uuid.uuid4().hex[:10]}"
    hosts(f'[[hosts]]\nname = "box"\nssh = "{ssh_host.alias}"\nslots = 2\norchestra = "{ssh_host.orchestra}"\n'
          f'path = "{path}"\n')
    return path.replace("~", str(ssh_host.home), 1)


hosts = write_settings


def at_host(ssh_host: SshHost, command: str) -> str:
    done = ssh_host.run(command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_run_on_a_host_comes_back_for_review_and_is_accepted_here(make_fleet, repo: Path, box: str,
                                                                      ssh_host: SshHost) -> None:
    fleet = make_fleet(repo, score_text({"coder": WRITER}, [SPEC]))
    run = fleet.spawn("work", host="box")[0]
    assert run.host == "box" and run.worktree == "box:"
    run = wait_settled(fleet, run.id, timeout=60)
    assert run.state == "review", run.message
    assert run.gates["check"].status == "passed" and run.gates["boundary"].status == "passed"
    assert "wrote it" in output_lines(fleet, run.id)
    assert (fleet.store.run_dir(run.id) / "gates" / "check.log").is_file()  # the gate's log came back with it
    remote = run.remote or {}
    assert remote["worktree"].startswith(box) and run.worktree == f"box:{remote['worktree']}"
    # Its worktree is there, not here; its candidate is here, fetched back on its branch.
    assert at_host(ssh_host, f"cat {remote['worktree']}/work.txt") == "first pass"
    assert not (fleet.repo.worktrees_dir / run.id).exists()
    assert fleet.branch_tip(run) == run.candidate
    assert "work.txt" in fleet.diff(run)
    accepted = fleet.accept(run.id)
    assert accepted.state == "accepted"
    assert (repo / "work.txt").read_text() == "first pass\n"
    entry = ledger_lines(fleet)[-1]
    assert entry["action"] == "accept" and entry["host"] == {"name": "box", "ssh": ssh_host.alias}
    from orchestra.core.ledger.report import show_line
    assert "worked at host box" in show_line(entry)
    # The ledger never lives at the host; the worktree there is gone, the mirror keeps the branch.
    assert at_host(ssh_host, f"find {box} -name 'ledger*' | wc -l") == "0"
    assert at_host(ssh_host, f"test -e {remote['worktree']} && echo there || echo gone") == "gone"
    summary = accepted.summary_json()
    assert summary["host"] == "box"


def test_a_rejected_run_on_a_host_keeps_its_branch_here_and_leaves_nothing_working_there(
        make_fleet, repo: Path, box: str, ssh_host: SshHost) -> None:
    fleet = make_fleet(repo, score_text({"coder": WRITER}, [SPEC]))
    run = wait_settled(fleet, fleet.spawn("work", host="box")[0].id, timeout=60)
    rejected = fleet.reject(run.id, "not this way")
    assert rejected.state == "rejected"
    assert fleet.branch_tip(rejected) == run.candidate
    worktree = (run.remote or {})["worktree"]
    assert at_host(ssh_host, f"test -e {worktree} && echo there || echo gone") == "gone"
    supervisors = f"pgrep -u orchestra-remote -f '[o]rchestra.core.supervise.supervisor {box}' || true"
    assert at_host(ssh_host, supervisors) == ""


def test_a_redirect_sends_the_run_back_to_work_at_its_host(make_fleet, repo: Path, box: str,
                                                           ssh_host: SshHost) -> None:
    fleet = make_fleet(repo, score_text({"coder": WRITER}, [SPEC]))
    run = wait_settled(fleet, fleet.spawn("work", host="box")[0].id, timeout=60)
    fleet.redirect(run.id, "second pass")
    again = wait_for(lambda: (r := fleet.get(run.id)).state == "review" and r.candidate != run.candidate and r,
                     timeout=60, message="the redirected run back in review")
    assert at_host(ssh_host, f"cat {(again.remote or {})['worktree']}/work.txt").splitlines() == [
        "first pass", "second pass"]
    assert fleet.branch_tip(again) == again.candidate


def test_stop_ends_the_agent_at_its_host(make_fleet, repo: Path, box: str, ssh_host: SshHost) -> None:
    fleet = make_fleet(repo, score_text({"sleeper": "echo started; sleep 121"}, [SPEC]))
    run = fleet.spawn("work", host="box")[0]
    wait_for(lambda: "started" in output_lines(fleet, run.id), timeout=60, message="the agent to start")
    stopped = fleet.stop(run.id)
    assert stopped.state == "stopped"
    wait_for(lambda: at_host(ssh_host, "pgrep -u orchestra-remote -f 'slee[p] 121' || true") == "", timeout=20,
             message="the agent at the host to end")


def test_a_dropped_connection_loses_nothing_and_repeats_nothing(make_fleet, repo: Path, box: str,
                                                                ssh_host: SshHost) -> None:
    counter = "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done; echo done >> work.txt"
    fleet = make_fleet(repo, score_text({"counter": counter}, [SPEC]))
    run = fleet.spawn("work", host="box")[0]
    wait_for(lambda: "line-5" in output_lines(fleet, run.id), timeout=60, message="some lines")
    assert ssh_host.drop_connections(), "there was a connection to drop"
    run = wait_settled(fleet, run.id, timeout=90)
    assert run.state == "review", run.message
    lines = [line for line in output_lines(fleet, run.id) if line.startswith("line-")]
    assert lines == [f"line-{i}" for i in range(1, 41)]
    offsets = [event["ro"] for event in events(fleet, run.id) if "ro" in event]
    assert offsets == sorted(set(offsets))
    said = [event.get("text", "") for event in events(fleet, run.id, "note")]
    assert any("dropped" in text for text in said) and any("again" in text for text in said)


def test_every_slot_busy_queues_a_run_until_one_frees(make_fleet, repo: Path, box: str, ssh_host: SshHost) -> None:
    hosts(settings_path().read_text().replace("slots = 2", "slots = 1") + '[[hosts]]\nname = "local"\nslots = 1\n')
    fleet = make_fleet(repo, score_text({"coder": "sleep 2; " + WRITER}, [SPEC]))
    first, second, third = fleet.spawn("work", count=3)
    assert {first.host, second.host} == {None, "box"}
    assert third.state == "queued" and third.slot_wait is not None and third.host is None
    assert "waiting for a free slot" in fleet.get(third.id).message
    wait_state(fleet, third.id, "working", "review", timeout=60)
    for run in (first, second, third):
        assert wait_settled(fleet, run.id, timeout=90).state == "review"
    assert "a slot is free" in " ".join(event.get("text", "") for event in events(fleet, third.id, "note"))


def test_only_the_declared_key_reaches_the_host_and_only_while_the_run_has_its_worktree(
        make_fleet, repo: Path, box: str, ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    monkeypatch.setenv("DEPLOY_KEY", key)
    monkeypatch.setenv("OTHER_TOKEN", "-----BEGIN RSA PRIVATE KEY-----\nnot declared\n-----END RSA PRIVATE KEY-----")
    agent = {"command": 'test -n "$DEPLOY_KEY" && test -z "$OTHER_TOKEN" && echo has-only-its-key >> work.txt',
             "env": ["DEPLOY_KEY"]}
    fleet = make_fleet(repo, score_text({"deployer": agent}, [SPEC]))
    run = wait_settled(fleet, fleet.spawn("work", host="box")[0].id, timeout=60)
    assert run.state == "review" and run.gates["check"].status == "passed", run.message
    found = ssh_host.find_private_keys()
    assert [path.name for path in found] == ["declared.json"], found
    assert json.loads(found[0].read_text()) == {"DEPLOY_KEY": key}
    assert found[0].stat().st_mode & 0o777 == 0o600
    assert "OTHER_TOKEN" not in found[0].read_text()
    fleet.reject(run.id, "done looking")
    assert ssh_host.find_private_keys() == []


def test_a_host_that_is_not_in_the_settings_is_refused_before_anything_starts(make_fleet, repo: Path,
                                                                              box: str) -> None:
    fleet = make_fleet(repo, score_text({"coder": WRITER}, [SPEC]))
    from orchestra.core.base.errors import BadUsage
    with pytest.raises(BadUsage, match="'gpu', which is not one of your hosts"):
        fleet.spawn("work", host="gpu")
    assert fleet.store.list() == []


def test_talking_to_a_live_agent_at_its_host_over_a_real_terminal(make_fleet, repo: Path, box: str) -> None:
    from tests.conftest import git
    from tests.core.helpers import cli
    from tests.core.test_attach import FAKE_CLI, PtyProgram
    (repo / "fake_cli.py").write_text(FAKE_CLI)
    git(repo, "add", "fake_cli.py")
    git(repo, "commit", "-q", "-m", "a fake interactive CLI")
    agent = {"command": "python3 fake_cli.py", "session": "interactive"}  # the host's Python, not this one's
    fleet = make_fleet(repo, score_text({"talker": agent}, [{"id": "chat", "intent": "talk"}], sandbox="off"))
    assert cli("-C", str(repo), "spawn", "chat", "--host", "box").stdout.strip() == "r1"
    wait_for(lambda: any("isatty True True" in line for line in output_lines(fleet, "r1")), timeout=60,
             message="the agent at the host in its terminal")
    terminal = PtyProgram(["-C", str(repo), "attach", "r1"], rows=30, columns=100)
    terminal.wait_shown("attached to r1 (talker); ctrl-] detaches")
    terminal.write(b"size\r")
    terminal.wait_shown("size 30x100")  # the window size went over ssh's terminal to the agent's
    terminal.write(b"hello there\r")
    terminal.wait_shown("you said hello there")
    terminal.write(b"\x1d")
    terminal.wait_shown("back from r1 (talker) at box")
    assert terminal.exit_status() == 0
    assert fleet.get("r1").state in ("working", "waiting")  # detaching leaves it working there


def test_a_relay_killed_mid_run_is_replaced_and_the_log_has_every_line_once(make_fleet, repo: Path,
                                                                            box: str) -> None:
    import os
    import signal
    counter = "for i in $(seq 1 30); do echo line-$i; sleep 0.1; done; echo done >> work.txt"
    fleet = make_fleet(repo, score_text({"counter": counter}, [SPEC]))
    run = fleet.spawn("work", host="box")[0]
    wait_for(lambda: "line-5" in output_lines(fleet, run.id), timeout=60, message="some lines")
    relay = fleet.store.load(run.id).supervisor_pid
    assert relay
    os.kill(relay, signal.SIGKILL)  # the relay dies; the run at its host does not notice
    run = wait_settled(fleet, run.id, timeout=90)  # reading the run starts a new relay, which takes up the log
    assert run.state == "review", run.message
    assert [line for line in output_lines(fleet, run.id) if line.startswith("line-")] == [
        f"line-{i}" for i in range(1, 31)]


def test_a_supervisor_killed_at_the_host_leaves_the_run_interrupted_here(make_fleet, repo: Path, box: str,
                                                                         ssh_host: SshHost) -> None:
    fleet = make_fleet(repo, score_text({"sleeper": "echo started; sleep 122"}, [SPEC]))
    run = fleet.spawn("work", host="box")[0]
    wait_for(lambda: "started" in output_lines(fleet, run.id), timeout=60, message="the agent to start")
    ssh_host.run(f"pkill -KILL -f '[o]rchestra.core.supervise.supervisor .*{box}.* {run.id} '")
    interrupted = wait_state(fleet, run.id, "interrupted", timeout=60)
    assert "supervisor for this run is gone" in interrupted.message
    wait_for(lambda: ssh_host.run("pgrep -u orchestra-remote -f 'slee[p] 122'").stdout.strip() == "", timeout=20,
             message="what its agent left at the host to end")
    assert fleet.reject(interrupted.id, "gone").state == "rejected"


def test_a_remote_run_granted_auto_is_accepted_by_policy_here(make_fleet, repo: Path, box: str) -> None:
    from tests.core.test_autopilot import ACTOR, autonomous
    fleet = autonomous(make_fleet, repo)
    run = wait_state(fleet, fleet.spawn("fix", host="box")[0].id, "accepted", timeout=90)
    assert run.host == "box" and run.decision["granted_by"] == ACTOR
    assert (repo / "src" / "app.py").read_text() == "def answer():\n    return 42\n"
    assert ledger_lines(fleet)[-1]["host"]["name"] == "box"


def test_a_remote_run_is_not_accepted_by_policy_onto_a_target_that_moved_on(make_fleet, repo: Path,
                                                                            box: str) -> None:
    from tests.conftest import git
    from tests.core.helpers import notes
    from tests.core.test_autopilot import AUTHOR, autonomous
    fleet = autonomous(make_fleet, repo, author=f"sleep 3; {AUTHOR}")
    run = fleet.spawn("fix", host="box")[0]
    (repo / "other.txt").write_text("meanwhile\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "the target moves on")
    wait_for(lambda: any("moved on since its base" in text for text in notes(fleet, run.id)), timeout=90,
             message="the policy to hold the run")
    assert fleet.get(run.id).state == "review"


def test_a_workflow_at_a_host_waits_here_for_its_plan_and_follows_the_plan_as_edited_here(
        make_fleet, repo: Path, box: str) -> None:
    from tests.core.test_workflows import at_stage, full_fleet
    coder = ('case "$ORCHESTRA_TASK" in *"edited by the conductor"*) ;; *) exit 3;; esac; '
             'mkdir -p src && echo "ANSWER = 42" > src/app.py')
    fleet = full_fleet(make_fleet, repo, coder=coder)
    run_id = fleet.spawn("answer", host="box")[0].id
    at_stage(fleet, run_id, "plan", "approval", timeout=60)
    plan = fleet.store.run_dir(run_id) / "plan.md"  # the planner's plan, come back from the host
    assert "set ANSWER to 42" in plan.read_text()
    plan.write_text(plan.read_text() + "2. edited by the conductor\n")
    fleet.accept(run_id)  # approves the plan: the next stages, at the host, get it as edited here
    run = wait_settled(fleet, run_id, timeout=90)
    assert run.state == "review" and run.workflow["status"] == "done", run.message
    assert [entry["stage"] for entry in run.workflow["log"]][-3:] == ["implement", "tests", "docs"]


def test_an_agents_own_host_is_where_its_runs_go(make_fleet, repo: Path, box: str) -> None:
    fleet = make_fleet(repo, score_text({"coder": {"command": WRITER, "host": "box"}, "here": WRITER}, [SPEC]))
    at_box, here = fleet.spawn("work")
    assert (at_box.agent, at_box.host, here.agent, here.host) == ("coder", "box", "here", None)
    assert wait_settled(fleet, at_box.id, timeout=60).state == "review"
    overridden = fleet.spawn("work", ["coder"], host="local")[0]  # --host wins over the agent's own
    assert overridden.host is None and wait_settled(fleet, overridden.id, timeout=60).state == "review"
