"""Graduated autonomy in action (issue 12): a ready run of a spec and agent granted "auto" is accepted by
policy, its entry naming the human who granted it; an unready one is not; and the pair is demoted at once,
with the reason, by a boundary violation, a secret, a P0 finding or a revert of an automatic accept.

The runs here are real: shell agents, a command reviewer, the supervisor asking the policy by itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orchestra.core.fleet import Fleet
from orchestra.core.fleet.autonomy import POLICY_ACTOR, Autonomy
from orchestra.core.fleet.autopilot import apply_policy
from orchestra.core.runs.hint import HINT_FILE
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, notes, wait_for, wait_settled, wait_state

ACTOR = "Test Conductor <conductor@example.test>"  # tests/conftest.py's git identity
AUTHOR = "mkdir -p src && printf 'def answer():\\n    return 42\\n' > src/app.py"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret


def verdict(*priorities: str) -> str:
    """A command reviewer's answer with one finding per priority (none: an approval)."""
    found = [{"title": f"a {p} problem", "body": "", "priority": p, "confidence": 1, "path": "src/app.py",
              "line_start": 1, "line_end": 1} for p in priorities]
    return json.dumps({"findings": found, "explanation": "read it"})


def autonomous(make_fleet: MakeFleet, repo: Path, author: str = AUTHOR, review: str = "", grant: bool = True,
               verify: str = "grep -q 42 src/app.py", extra: str = "") -> Fleet:
    """A score with an author, a command reviewer answering review, one spec; "auto" granted to the pair."""
    reviewer = f"cat > /dev/null; printf '%s' '{review or verdict()}'"
    text = ('[review]\nagents = ["critic"]\n'
            f"[[agents]]\nname = \"author\"\nkind = \"shell\"\ncommand = '''{author}'''\n"
            f"[[agents]]\nname = \"critic\"\nkind = \"shell\"\nrole = \"review\"\ncommand = '''{reviewer}'''\n"
            '[[specs]]\nid = "fix"\nintent = "Make answer() return 42"\nallow = ["src/**"]\n'
            f"verify = ['''{verify}''']\n{extra}")
    fleet = make_fleet(repo, text)
    if grant:
        Autonomy(fleet).grant("fix", "author", ACTOR, reason="a clean record")
    return fleet


def decided(fleet: Fleet, action: str) -> list[dict]:
    return [entry for entry in fleet.ledger.entries() if entry["action"] == action]


def level(fleet: Fleet) -> str:
    return Autonomy(fleet).standing("fix", "author").level


def test_a_ready_run_is_accepted_by_policy_in_the_name_of_who_granted_it(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo)
    run = wait_state(fleet, fleet.spawn("fix")[0].id, "accepted", timeout=60)
    grant = decided(fleet, "grant")[0]
    [entry] = decided(fleet, "accept")
    assert (entry["actor"], entry["granted_by"], entry["grant"], entry["autonomy"]) == (
        POLICY_ACTOR, ACTOR, grant["hash"], "auto")
    assert {gate["name"]: gate["status"] for gate in entry["gates"]}["review-critic"] == "passed"
    assert run.decision["actor"] == POLICY_ACTOR and run.decision["granted_by"] == ACTOR
    assert run.message == f"accepted by policy (autonomy granted by {ACTOR})"
    body = subprocess.run(["git", "log", "-1", "--format=%B", run.merge_commit], cwd=repo, capture_output=True,
                          text=True, check=True).stdout
    assert f"Accepted-By: policy\nOrchestra-Autonomy: auto, granted by {ACTOR}" in body
    assert (repo / "src" / "app.py").read_text() == "def answer():\n    return 42\n"
    assert fleet.ledger.verify().ok and level(fleet) == "auto"


def test_an_unready_run_is_left_to_a_human_with_the_reason(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, verify="grep -q 43 src/app.py")
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    wait_for(lambda: any(n.startswith("not accepted by policy: gate") for n in notes(fleet, run.id)))
    assert fleet.get(run.id).state == "review" and decided(fleet, "accept") == []
    outcome = apply_policy(fleet, run.id)  # asked again by hand: the same answer, nothing changed
    assert outcome.done == "held" and "failed" in outcome.text and fleet.get(run.id).state == "review"
    assert level(fleet) == "auto"  # a failing test is a run not ready, not a reason to demote


def test_a_p1_finding_holds_the_run_without_demoting(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, review=verdict("P1"))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    outcome = apply_policy(fleet, run.id)
    assert outcome.done == "held" and fleet.get(run.id).state == "review" and level(fleet) == "auto"


def test_without_a_grant_nothing_is_accepted_and_the_hint_file_grants_nothing(repo: Path,
                                                                             make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, grant=False)
    spawned = fleet.spawn("fix")[0]
    (fleet.repo.state_dir / HINT_FILE).write_text(json.dumps({"auto": [["fix", "author"]]}))  # forged
    run = wait_settled(fleet, spawned.id)
    wait_for(lambda: (fleet.store.run_dir(run.id) / "policy.log").exists())  # the supervisor asked the policy
    assert apply_policy(fleet, run.id).done == "manual"
    assert fleet.get(run.id).state == "review" and decided(fleet, "accept") == []


def test_a_committed_cap_keeps_a_granted_pair_manual(repo: Path, make_fleet: MakeFleet) -> None:
    autonomous(make_fleet, repo)
    fleet = autonomous(make_fleet, repo, grant=False, extra='max_autonomy = "manual"\n')  # committed after it
    assert Autonomy(fleet).standing("fix", "author").granted == "auto"
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert apply_policy(fleet, run.id).done == "manual" and fleet.get(run.id).state == "review"


def demotion(fleet: Fleet) -> dict:
    [entry] = [e for e in decided(fleet, "revoke") if e.get("demoted")]
    assert entry["actor"] == POLICY_ACTOR and entry["granted_by"] == ACTOR and entry["level"] == "manual"
    assert level(fleet) == "manual" and fleet.ledger.verify().ok
    return entry


def test_a_boundary_violation_demotes_at_once(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, author=AUTHOR + " && echo sneaky > outside.txt")
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    entry = wait_for(lambda: next((e for e in decided(fleet, "revoke") if e.get("demoted")), None))
    assert entry["cause"] == "boundary" and "outside.txt" in entry["reason"] and entry["run"] == run.id
    demotion(fleet)
    assert fleet.get(run.id).state == "review" and decided(fleet, "accept") == []  # left for a human
    assert apply_policy(fleet, run.id).done == "manual"  # asked again (another gate): demoted once
    demotion(fleet)


def test_a_secret_demotes_at_once(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, author=AUTHOR + f" && echo 'KEY = \"{AWS_KEY}\"' > src/keys.py")
    wait_settled(fleet, fleet.spawn("fix")[0].id)
    wait_for(lambda: level(fleet) == "manual")
    assert demotion(fleet)["cause"] == "secret" and decided(fleet, "accept") == []


def test_a_p0_finding_demotes_at_once(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, review=verdict("P0"))
    wait_settled(fleet, fleet.spawn("fix")[0].id)
    wait_for(lambda: level(fleet) == "manual")
    entry = demotion(fleet)
    assert entry["cause"] == "P0 finding" and "a P0 problem" in entry["reason"]


def test_reverting_an_automatic_accept_demotes_and_resets_the_track_record(repo: Path,
                                                                          make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo)
    run = wait_state(fleet, fleet.spawn("fix")[0].id, "accepted", timeout=60)
    done = cli("revert", run.id, "--reason", "broke prod", cwd=repo)
    assert done.returncode == 0, done.stderr
    entry = demotion(fleet)
    assert (entry["cause"], entry["run"]) == ("revert", run.id) and ACTOR in entry["reason"]
    assert Autonomy(fleet).standing("fix", "author").streak == 0


def test_a_human_revert_of_a_human_accept_demotes_nothing(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo, grant=False)
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    fleet.accept(run.id)
    Autonomy(fleet).grant("fix", "author", ACTOR)
    fleet.revert(run.id, reason="undo")
    assert level(fleet) == "auto" and not [e for e in decided(fleet, "revoke") if e.get("demoted")]


def move_target(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    subprocess.run(["git", "add", name], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", f"meanwhile: {name}"], cwd=repo, check=True)


def accepted_on_a_moved_target(make_fleet: MakeFleet, repo: Path, name: str) -> tuple[Fleet, str]:
    """A ready run, the target moved on meanwhile (with name), then the pair granted and the policy asked."""
    fleet = autonomous(make_fleet, repo, grant=False, verify="test ! -e broken.txt")
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    move_target(repo, name, "x\n")
    Autonomy(fleet).grant("fix", "author", ACTOR)
    assert apply_policy(fleet, run.id).done == "accepted"
    return fleet, run.id


def test_a_check_failing_on_the_target_after_an_automatic_merge_demotes(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run_id = accepted_on_a_moved_target(make_fleet, repo, "broken.txt")
    wait_for(lambda: level(fleet) == "manual", timeout=60)
    entry = demotion(fleet)
    assert entry["cause"] == "gate failed after merge" and entry["run"] == run_id
    run = fleet.get(run_id)
    assert run.target_check["done"] and run.target_check["merge_commit"] == run.merge_commit
    assert [gate["status"] for gate in run.target_check["gates"]] == ["failed"]
    wait_for(lambda: not Path(run.worktree).exists())  # verified, then cleaned
    assert (repo / "src" / "app.py").exists()  # the merge stays: undoing it is a human's revert


def test_checks_passing_on_the_target_keep_the_autonomy(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, run_id = accepted_on_a_moved_target(make_fleet, repo, "harmless.txt")
    wait_for(lambda: (fleet.get(run_id).target_check or {}).get("done"), timeout=60)
    wait_for(lambda: not Path(fleet.get(run_id).worktree).exists())
    assert level(fleet) == "auto" and [g["status"] for g in fleet.get(run_id).target_check["gates"]] == ["passed"]


def test_an_automatic_merge_of_the_tree_its_gates_saw_is_not_verified_again(repo: Path,
                                                                             make_fleet: MakeFleet) -> None:
    fleet = autonomous(make_fleet, repo)
    run = wait_state(fleet, fleet.spawn("fix")[0].id, "accepted", timeout=60)
    wait_for(lambda: not Path(run.worktree).exists())  # removed right after the accept, as a human's
    assert fleet.get(run.id).target_check is None


def test_an_accept_by_policy_killed_after_its_merge_is_completed_in_the_policys_name(
        repo: Path, make_fleet: MakeFleet) -> None:
    from tests.core.test_crash_decisions import KILLED, assert_converged_accept, orchestra
    fleet = autonomous(make_fleet, repo, grant=False)
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    Autonomy(fleet).grant("fix", "author", ACTOR)  # after its gates settled: nothing asks the policy but us
    assert orchestra(repo, "policy", run.id, fault="accept.merged").returncode == KILLED
    assert orchestra(repo, "runs").returncode == 0  # converges
    assert assert_converged_accept(fleet, repo, run.id)
    entry = decided(fleet, "accept")[0]
    assert (entry["actor"], entry["granted_by"], entry["recovered"]) == (POLICY_ACTOR, ACTOR, True)
    assert fleet.get(run.id).decision["granted_by"] == ACTOR


def test_a_warm_policy_process_acts_only_on_go(repo: Path, make_fleet: MakeFleet) -> None:
    import os
    import sys
    fleet = autonomous(make_fleet, repo, grant=False)
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    Autonomy(fleet).grant("fix", "author", ACTOR)  # after its gates settled: nothing asks the policy but us
    argv = [sys.executable, "-m", "orchestra.cli", "-C", str(repo), "policy", run.id, "--wait"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    for said in ("", "stop\n"):  # the end of its input, or anything but go: it does nothing
        done = subprocess.run(argv, input=said, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0 and done.stdout == "", done
        assert fleet.get(run.id).state == "review" and decided(fleet, "accept") == []
    done = subprocess.run(argv, input="go\n", capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "accepted by policy" in done.stdout, done
    assert fleet.get(run.id).state == "accepted"
