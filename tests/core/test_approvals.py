"""Approval rules (issue 12): a run changing files under [[approvals]] merges only once enough distinct humans
accepted the same candidate; the same person twice, the run's starter alone, and the policy never count."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.approvals import status
from orchestra.core.fleet.autonomy import Autonomy
from orchestra.core.fleet.autopilot import apply_policy
from orchestra.core.score import ConfigError
from tests.core.conftest import MakeFleet
from tests.core.helpers import notes, score_text, wait_settled

STARTER = "Test Conductor <conductor@example.test>"  # tests/conftest.py's git identity: who spawns here
ADA, BOB = "Ada Lovelace <ada@example.test>", "Bob Builder <bob@example.test>"


def ruled(make_fleet: MakeFleet, repo: Path, rule: str,
          command: str = "mkdir -p db && echo v2 > db/schema.sql") -> Fleet:
    text = score_text({"coder": command}, [{"id": "work", "intent": "change the schema"}])
    return make_fleet(repo, text + "\n[[approvals]]\n" + rule)


def in_review(fleet: Fleet) -> str:
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review", run.message
    return run.id


def actions(fleet: Fleet) -> list[str]:
    return [entry["action"] for entry in fleet.ledger.entries()]


def test_two_distinct_people_are_needed_and_the_same_one_twice_does_not_count(repo: Path,
                                                                             make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\nrequire = 2\n')
    run_id = in_review(fleet)
    run = fleet.accept(run_id, actor=ADA)
    assert run.state == "review" and actions(fleet) == ["approve"]
    assert status(fleet, run).line() == "1 of 2 approvals: Ada Lovelace"
    assert any("approved by Ada Lovelace" in note and "1 of 2 approvals" in note for note in notes(fleet, run_id))
    with pytest.raises(ActionRefused, match="already approved"):
        fleet.accept(run_id, actor="Ada L. <ADA@example.test>")  # the same person under another name
    assert actions(fleet) == ["approve"]
    run = fleet.accept(run_id, actor=BOB)
    assert run.state == "accepted" and actions(fleet) == ["approve", "accept"]
    entry = fleet.ledger.entries()[-1]
    assert entry["approvals"] == [ADA, BOB] and entry["actor"] == BOB
    body = subprocess.run(["git", "log", "-1", "--format=%B", run.merge_commit], cwd=repo, capture_output=True,
                          text=True, check=True).stdout
    assert f"Approved-By: {ADA}\nApproved-By: {BOB}" in body
    assert fleet.ledger.verify().ok


def test_the_runs_starter_alone_does_not_count(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\n')
    run_id = in_review(fleet)
    assert fleet.get(run_id).started_by == STARTER
    run = fleet.accept(run_id, actor=STARTER)
    assert run.state == "review" and status(fleet, run).line() == "0 of 1 approvals"
    assert any("cannot be its only approver" in note for note in notes(fleet, run_id))
    assert fleet.accept(run_id, actor=ADA).state == "accepted"
    assert fleet.ledger.entries()[-1]["approvals"] == [STARTER, ADA]


def test_a_change_to_the_candidate_asks_for_the_approvals_again(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\nrequire = 2\n')
    run_id = in_review(fleet)
    fleet.accept(run_id, actor=ADA)
    assert status(fleet, fleet.get(run_id)).line() == "1 of 2 approvals: Ada Lovelace"
    moved = dataclasses.replace(fleet.get(run_id), candidate="0" * 40)  # as an edit or an update would move it
    assert status(fleet, moved).line() == "0 of 2 approvals"


def test_named_approvers_and_codeowners_say_who_may(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\napprovers = ["ada@example.test"]\n')
    run_id = in_review(fleet)
    with pytest.raises(ActionRefused, match="cannot approve run .* which the rule's approvers give to ada@"):
        fleet.accept(run_id, actor=BOB)
    assert actions(fleet) == [] and fleet.get(run_id).state == "review"
    assert fleet.accept(run_id, actor=ADA).state == "accepted"

    (repo / ".github").mkdir()
    (repo / ".github" / "CODEOWNERS").write_text("* @nobody\n/db/ @bob ada@example.test\n")
    subprocess.run(["git", "add", ".github"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "owners"], cwd=repo, check=True)
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\ncodeowners = true\n', command="echo v3 > db/schema.sql")
    run_id = in_review(fleet)
    with pytest.raises(ActionRefused, match="CODEOWNERS give to @bob, ada@example.test"):
        fleet.accept(run_id, actor="Carol <carol@example.test>")
    assert fleet.accept(run_id, actor=BOB).state == "accepted"  # @bob: the email's local part


def test_files_outside_every_rule_merge_on_one_accept(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\nrequire = 2\n', command="echo hi > notes.txt")
    assert fleet.accept(in_review(fleet), actor=STARTER).state == "accepted"


def test_an_accept_by_policy_never_counts_as_an_approval(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\n')
    Autonomy(fleet).grant("work", "coder", STARTER)
    run_id = in_review(fleet)
    outcome = apply_policy(fleet, run_id)
    assert outcome.done == "held" and "approval rule needs 1 human approval" in outcome.text
    assert fleet.get(run_id).state == "review" and "accept" not in actions(fleet)


@pytest.mark.parametrize(("rule", "message"), [
    ('paths = []\n', "is empty: name the files"),
    ('paths = ["db/**"]\nrequire = 0\n', "must be a whole number from 1 to 20"),
    ('paths = ["/abs"]\n', "is an absolute path"),
    ('paths = ["db/**"]\napprovers = ["a"]\ncodeowners = true\n', "not both"),
    ('require = 2\n', "paths"),
    ('paths = ["db/**"]\nrequired = 2\n', "unknown key 'required'"),
])
def test_a_bad_rule_is_a_clear_score_problem(repo: Path, make_fleet: MakeFleet, rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ruled(make_fleet, repo, rule)


def test_the_command_line_says_an_accept_was_an_approval(repo: Path, make_fleet: MakeFleet) -> None:
    from tests.core.helpers import cli
    fleet = ruled(make_fleet, repo, 'paths = ["db/**"]\n')
    run_id = in_review(fleet)
    done = cli("accept", run_id, cwd=repo)
    assert done.returncode == 0 and done.stdout.startswith(f"Approved {run_id}: 0 of 1 approvals. It merges when"), done
    assert fleet.get(run_id).state == "review"
    listed = cli("runs", "--json", cwd=repo)
    [shown] = [run for run in __import__("json").loads(listed.stdout) if run["id"] == run_id]
    assert shown["approvals"][0]["actor"] == STARTER and shown["started_by"] == STARTER
