"""Workflows (issue 13): a spec's work as stages, each its own agent's turn on the same branch and worktree.

The `full` workflow with scripted shell agents: a plan the conductor approves before any code is written (its
hash in the ledger), then implement, tests and docs, each committed by its agent, the gates after each stage,
and the review and decision after the last. A stage's failure stops the workflow; a redirect restarts that
stage; a rejected plan goes back to the planner (on_reject "retry") or ends the run ("abort")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.policy import NotReady, readiness
from orchestra.core.runs.workflow import read_plan
from orchestra.core.score import ConfigError
from orchestra.core.score.load import parse_score
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, score_text, wait_for, wait_settled
from tests.harness.fake_openai import FakeOpenAI, text

PLANNER = "printf '# Plan\\n\\n1. set ANSWER to 42 in src/app.py\\n%s\\n' \"$ORCHESTRA_REDIRECT\" > PLAN.md"
# The implementer works only from an approved plan: without one in its task it fails.
CODER = ('case "$ORCHESTRA_TASK" in *"set ANSWER to 42"*) ;; *) echo "no plan in my task"; exit 3;; esac; '
         'mkdir -p src && printf "ANSWER = ${ORCHESTRA_ANSWER:-42}\\n" > src/app.py')
TESTER = "mkdir -p tests && printf 'from src.app import ANSWER\\nassert ANSWER == 42\\n' > tests/test_app.py"
WRITER = "mkdir -p docs && printf 'ANSWER is 42.\\n' > docs/app.md"


def agents(**overrides: str) -> dict[str, object]:
    found: dict[str, object] = {"planner": {"command": PLANNER, "role": "plan"}, "coder": CODER,
                                "tester": {"command": TESTER, "role": "tests"},
                                "writer": {"command": WRITER, "role": "docs"}}
    for name, command in overrides.items():
        found[name] = {**found[name], "command": command} if isinstance(found[name], dict) else command
    return found


def full_fleet(make_fleet: MakeFleet, repo: Path, workflow: str = "full", extra: str = "", **overrides: str) -> Fleet:
    spec = {"id": "answer", "intent": "ANSWER is 42", "agents": ["coder"], "workflow": workflow,
            "allow": ["src/**", "tests/**", "docs/**"], "verify": ["grep -q 42 src/app.py"]}
    return make_fleet(repo, score_text(agents(**overrides), [spec]) + extra)


def at_stage(fleet: Fleet, run_id: str, name: str, status: str, timeout: float = 30):
    """Wait until the run's workflow is at stage name with status, and return the run."""
    def check():
        run = fleet.get(run_id)
        stage = (run.workflow or {})["stages"][run.workflow["at"]]["name"] if run.workflow else None
        return run if stage == name and run.workflow["status"] == status and not run.is_active else None
    return wait_for(check, timeout, message=lambda: f"run {run_id} at {name} ({status}): {fleet.get(run_id).message}")


def authors(repo: Path, run) -> list[str]:
    """The agents that authored the run's commits, oldest first."""
    names = git(repo, "log", "--reverse", "--format=%an", f"{run.base}..{run.branch}").split("\n")
    return [name.removesuffix(" (orchestra agent)") for name in names]


def test_the_full_workflow_plans_then_implements_tests_and_documents(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo)
    run_id = fleet.spawn("answer")[0].id
    run = at_stage(fleet, run_id, "plan", "approval")
    assert run.state == "review" and "the plan waits for your approval" in run.message
    plan = read_plan(fleet.store.run_dir(run_id))
    assert plan.startswith("# Plan") and "set ANSWER to 42" in plan
    assert git(repo, "rev-parse", run.branch) == run.base  # the plan is not in the candidate: no code yet
    # It cannot be merged: its workflow has not finished (an accept approves the plan instead).
    assert "the workflow is at stage 1/4 (plan), which waits for your approval" in readiness(run).reasons[0]
    shown = json.loads(cli("runs", "--json", cwd=repo).stdout)[0]["workflow"]
    assert (shown["name"], shown["status"], shown["stage"]["index"], shown["stage"]["of"]) == ("full", "approval", 1, 4)
    assert [s["agent"] for s in shown["stages"]] == ["planner", "coder", "tester", "writer"]

    fleet.accept(run_id)  # approves the plan
    [approval] = [e for e in fleet.ledger.entries() if e["action"] == "advance"]
    assert approval["plan_sha256"] == hashlib.sha256(plan.encode()).hexdigest() and approval["stage"] == "plan"
    assert approval["plan_edited"] is False
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.state == "review" and run.workflow["status"] == "done", run.message
    assert [e["stage"] for e in run.workflow["log"]] == ["plan", "plan", "implement", "tests", "docs"]
    assert authors(repo, run) == ["coder", "tester", "writer"]
    assert all(gate.status == "passed" for gate in run.gates.values()), run.gates
    accepted = fleet.accept(run_id)
    assert accepted.state == "accepted"
    entry = fleet.ledger.last()
    assert entry["workflow"]["plan_sha256"] == approval["plan_sha256"]
    assert [s["agent"] for s in entry["workflow"]["stages"]] == ["planner", "coder", "tester", "writer"]
    assert (repo / "docs" / "app.md").exists() and not (repo / "PLAN.md").exists()
    shown = cli("ledger", "show", cwd=repo).stdout.splitlines()
    assert f"approved stage 1 plan of full, plan {approval['plan_sha256'][:12]}" in shown[0]
    assert "workflow full: plan:planner → implement:coder → tests:tester → docs:writer" in shown[1]
    statements = cli("ledger", "export", "--format", "in-toto", cwd=repo).stdout.splitlines()
    exported = [json.loads(line) for line in statements]
    assert exported[0]["predicate"]["stage"] == {"name": "plan", "index": 1, "plan_sha256": approval["plan_sha256"],
                                                 "plan_edited": False}
    assert exported[1]["predicate"]["workflow"]["plan_sha256"] == approval["plan_sha256"]


def test_an_edited_plan_is_what_the_implementer_gets_and_the_ledger_says_so(repo: Path, make_fleet: MakeFleet) -> None:
    coder = ('case "$ORCHESTRA_TASK" in *"edited by the conductor"*) ;; *) exit 3;; esac; '
             'mkdir -p src && echo "ANSWER = 42" > src/app.py')
    fleet = full_fleet(make_fleet, repo, coder=coder)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    place = fleet.store.run_dir(run_id) / "plan.md"
    place.write_text(place.read_text() + "2. edited by the conductor\n")
    fleet.accept(run_id)
    approval = [e for e in fleet.ledger.entries() if e["action"] == "advance"][0]
    assert approval["plan_edited"] is True
    assert approval["plan_sha256"] == hashlib.sha256(place.read_bytes()).hexdigest()
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.state == "review" and run.workflow["status"] == "done", run.message


def test_a_redirected_plan_is_written_again_before_any_code(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.redirect(run_id, "mention the tests")
    wait_for(lambda: fleet.get(run_id).is_active or None, 10, message="the planner to start again")
    run = at_stage(fleet, run_id, "plan", "approval")
    assert "mention the tests" in read_plan(fleet.store.run_dir(run_id))
    assert git(repo, "rev-parse", run.branch) == run.base


def test_a_rejected_plan_goes_back_to_the_planner_with_the_reason(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.reject(run_id, "too vague")
    [entry] = [e for e in fleet.ledger.entries() if e["run"] == run_id]
    assert (entry["action"], entry["rejected_stage"], entry["reason"]) == ("redirect", "plan", "too vague")
    run = at_stage(fleet, run_id, "plan", "approval")
    assert "too vague" in read_plan(fleet.store.run_dir(run_id))  # the planner was told (ORCHESTRA_REDIRECT)
    assert run.state == "review"


def test_on_reject_abort_rejects_the_run(repo: Path, make_fleet: MakeFleet) -> None:
    strict = ('[[workflows]]\nname = "strict"\n[[workflows.stages]]\nname = "plan"\nrole = "plan"\napprove = true\n'
              'on_reject = "abort"\n[[workflows.stages]]\nname = "implement"\n')
    fleet = full_fleet(make_fleet, repo, workflow="strict", extra=strict)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    assert fleet.reject(run_id, "wrong approach").state == "rejected"


def test_a_failing_gate_stops_the_workflow_and_a_redirect_restarts_that_stage(
        repo: Path, make_fleet: MakeFleet) -> None:
    # The implementer gets it wrong first (41), right when redirected (the instruction is its answer).
    coder = CODER.replace("${ORCHESTRA_ANSWER:-42}", "${ORCHESTRA_REDIRECT:-41}")
    fleet = full_fleet(make_fleet, repo, coder=coder)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.accept(run_id)
    run = at_stage(fleet, run_id, "implement", "stopped")
    assert run.state == "review" and "2/4 implement: coder: stopped: gate grep failed" in run.message
    assert run.gates["grep"].status == "failed" and not any(name.startswith("review-") for name in run.gates)
    with pytest.raises(NotReady, match="stage 2/4 \\(implement\\), which stopped"):
        fleet.accept(run_id)
    fleet.redirect(run_id, "42")
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.state == "review" and run.workflow["status"] == "done", run.message
    assert authors(repo, run) == ["coder", "coder", "tester", "writer"]


def test_a_tests_stage_that_changes_code_stops_the_workflow(repo: Path, make_fleet: MakeFleet) -> None:
    tester = TESTER + " && echo 'ANSWER = 43' > src/app.py"
    fleet = full_fleet(make_fleet, repo, tester=tester)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.accept(run_id)
    run = at_stage(fleet, run_id, "tests", "stopped")
    assert "3/4 tests: tester: stopped: a tests agent may only change tests: src/app.py" in run.message


def test_a_plan_stage_that_changes_files_stops_and_a_linked_plan_is_never_read(
        repo: Path, make_fleet: MakeFleet, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the contents of a file outside the worktree\n")
    planner = f"ln -s {secret} PLAN.md; echo 'plan: see the steps'"
    fleet = full_fleet(make_fleet, repo, planner=planner)
    run_id = fleet.spawn("answer")[0].id
    run = at_stage(fleet, run_id, "plan", "stopped")
    assert "a plan stage changes no files, and it changed PLAN.md" in run.message
    plan = read_plan(fleet.store.run_dir(run_id)) or ""
    assert "outside the worktree" not in plan and "plan: see the steps" in plan


def test_a_stage_whose_agent_fails_stops_the_workflow_there(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo, writer="echo 'no words today'; exit 4")
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.accept(run_id)
    run = wait_for(lambda: (r := fleet.get(run_id)).state == "failed" and r or None, 60,
                   message="the docs stage to fail")
    assert run.message.startswith("4/4 docs: writer: ") and run.workflow["status"] == "failed"
    assert run.workflow["log"][-1]["stage"] == "docs" and run.workflow["log"][-1]["outcome"] == "failed"


def test_a_spec_without_a_workflow_runs_as_before(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"coder": "echo 42 > answer.txt"}, [{"id": "plain", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("plain")[0].id)
    assert run.workflow is None and run.state == "review"
    assert json.loads(cli("runs", "--json", cwd=repo).stdout)[0]["workflow"] is None


def test_the_quick_workflow_is_the_plain_flow(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo, workflow="quick", coder="mkdir -p src && echo 'ANSWER = 42' > src/app.py")
    run = wait_settled(fleet, fleet.spawn("answer")[0].id)
    assert run.workflow is None and run.state == "review"


@pytest.mark.parametrize("text, message", [
    ('[[workflows]]\nname = "full"\n[[workflows.stages]]\nname = "x"\n', "'full' is a built-in workflow"),
    ('[[workflows]]\nname = "w"\nstages = []\n', "a workflow needs at least one stage"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nname = "x"\nrole = "review"\n', "review comes after the last"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nname = "x"\nrole = "tester"\n', "invalid role 'tester'"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nname = "x"\nagents = ["nobody"]\n', "unknown agent 'nobody'"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nname = "x"\non_reject = "again"\n', "invalid on_reject"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nname = "x"\n[[workflows.stages]]\nname = "x"\n',
     "duplicate stage 'x'"),
    ('[[workflows]]\nname = "w"\n[[workflows.stages]]\nrole = "code"\n', "name"),
    ('[[specs]]\nid = "s"\nintent = "i"\nworkflow = "ful"\n', "unknown workflow 'ful'"),
    ('workflows = 3\n', "expected array of tables ([[workflows]])"),
])
def test_bad_workflows_are_clear_score_errors(text: str, message: str) -> None:
    base = '[[agents]]\nname = "coder"\nkind = "shell"\ncommand = "true"\n'
    with pytest.raises(ConfigError) as raised:
        parse_score(text + base if text.startswith("workflows =") else base + text, Path("orchestra.toml"))
    assert message in str(raised.value)
    assert "orchestra.toml:" in str(raised.value)


def test_approving_a_stage_that_waits_for_no_approval_is_refused(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = full_fleet(make_fleet, repo)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    fleet.accept(run_id)
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.workflow["status"] == "done"
    with pytest.raises(ActionRefused, match="waits for no approval"):
        fleet.decisions.advance(run_id, "Test Conductor <conductor@example.test>")
    assert [e["action"] for e in fleet.ledger.entries()] == ["advance"]


def test_orchestra_plan_prints_and_edits_the_plan_and_accept_approves_it(
        repo: Path, make_fleet: MakeFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coder = ('case "$ORCHESTRA_TASK" in *"edited in the editor"*) ;; *) exit 3;; esac; '
             'mkdir -p src && echo "ANSWER = 42" > src/app.py')
    fleet = full_fleet(make_fleet, repo, coder=coder)
    run_id = fleet.spawn("answer")[0].id
    at_stage(fleet, run_id, "plan", "approval")
    shown = cli("plan", run_id, cwd=repo)
    assert shown.returncode == 0 and shown.stdout.startswith("# Plan") and "set ANSWER to 42" in shown.stdout
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\necho "2. edited in the editor" >> "$1"\n')
    editor.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(editor))
    edited = cli("plan", run_id, "--edit", cwd=repo)
    assert edited.returncode == 0, edited.stderr
    approved = cli("accept", run_id, cwd=repo)
    assert approved.returncode == 0 and approved.stdout.startswith(f"Approved {run_id}: the plan approved by")
    assert "now 2/4 implement: coder" in approved.stdout
    run = wait_settled(fleet, run_id, timeout=60)
    assert run.workflow["status"] == "done" and run.workflow["plan"]["edited"] is True, run.message
    refused = cli("plan", run_id, "--edit", cwd=repo)  # approved already: no longer editable
    assert refused.returncode == 1 and "no plan waiting for your approval" in refused.stderr


def test_orchestra_plan_of_a_run_without_a_workflow_says_so(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"coder": "echo 42 > answer.txt"}, [{"id": "plain", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("plain")[0].id)
    done = cli("plan", run.id, cwd=repo)
    assert (done.returncode, done.stdout) == (1, "") and f"Run {run.id} has no plan (no workflow)" in done.stderr


def test_a_security_stage_last_reports_its_findings_on_the_candidate(repo: Path, make_fleet: MakeFleet,
                                                                      server: FakeOpenAI) -> None:
    """implement → security: the security stage's llm agent only reads (the staged role), and its findings join
    the run's gates in review, on the implementer's candidate."""
    audited = ('[[workflows]]\nname = "audited"\n[[workflows.stages]]\nname = "implement"\n'
               '[[workflows.stages]]\nname = "security"\nrole = "security"\nagents = ["sec"]\n'
               f'[[agents]]\nname = "sec"\nkind = "llm"\nmodel = "openai/fake-model"\napi_base = "{server.url}"\n'
               'api_key_env = "FAKE_PROVIDER_KEY"\n')
    fleet = full_fleet(make_fleet, repo, workflow="audited", extra=audited,
                       coder="mkdir -p src && echo 'ANSWER = 42' > src/app.py")
    finding = {"title": "Magic number", "body": "Name it.", "priority": "P2", "confidence": 0.9,
               "path": "src/app.py", "line_start": 1, "line_end": 1, "suggestion": None}
    server.script(text(json.dumps({"explanation": "One nit.", "findings": [finding]})))
    run = wait_settled(fleet, fleet.spawn("answer")[0].id, timeout=60)
    assert run.state == "review" and run.workflow["status"] == "done", run.message
    assert {tool["function"]["name"] for tool in server.requests[0]["tools"]} == {"list_files", "read_file", "search"}
    assert "Your role is security review" in server.requests[0]["messages"][0]["content"]
    gate = run.gates["security-sec"]
    assert (gate.kind, gate.status, gate.tree) == ("findings", "passed", run.tree)
    assert [f["title"] for f in gate.findings] == ["Magic number"]
