"""Parts that integrate (issue 13): a spec's parts run in parallel, each held to its own boundary; once every part
is in review, their candidates are merged onto the target as one integration candidate that the spec's own verify
checks; conflicts name the parts and files; accepting it is one decision listing its parts, which it closes; a
redirected part is integrated again, replacing the old candidate.

Real runs: shell agents writing api/version and ui/version; the spec's check wants them to agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused, BadUsage, OrchestraError
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.integration import REPLACED_REASON, PartsConflict, PartsNotInReview, integrate
from orchestra.core.fleet.integration_accept import PartsNotReady
from orchestra.core.policy import readiness
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, notes, wait_for, wait_settled

ACTOR = "Test Conductor <conductor@example.test>"
AGREE = 'test "$(cat api/version)" = "$(cat ui/version)"'


def score(api: str = "echo 2 > api/version", ui: str = "echo 2 > ui/version", ui_allow: str = '["ui/**"]') -> str:
    return f"""
[[agents]]
name = "api-dev"
kind = "shell"
command = '''{api}'''

[[agents]]
name = "ui-dev"
kind = "shell"
command = '''{ui}'''

[[specs]]
id = "app"
intent = "api and ui agree on the version"
verify = [{{ name = "agree", command = '''{AGREE}''' }}]

[[specs.parts]]
id = "api"
intent = "api to version 2"
allow = ["api/**"]
agents = ["api-dev"]
verify = [{{ name = "api-check", command = "test -s api/version" }}]

[[specs.parts]]
id = "ui"
intent = "ui to version 2"
allow = {ui_allow}
agents = ["ui-dev"]
"""


def versioned(repo: Path) -> Path:
    """The repository with api/version and ui/version at 1 (they agree)."""
    for side in ("api", "ui"):
        (repo / side).mkdir()
        (repo / side / "version").write_text("1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "versions")
    return repo


def parts_in_review(make_fleet: MakeFleet, repo: Path, **commands: str) -> tuple[Fleet, dict[str, str]]:
    """A fleet whose spec's parts were spawned and settled; part id -> run id."""
    fleet = make_fleet(versioned(repo), score(**commands))
    started = fleet.spawn("app")
    runs = {run.part_of["part"]: wait_settled(fleet, run.id) for run in started}
    return fleet, {part: run.id for part, run in runs.items()}


def built(fleet: Fleet, name: str = "app"):
    return wait_settled(fleet, integrate(fleet, name, ACTOR).id)


def test_parts_run_in_parallel_each_held_to_its_own_boundary(repo: Path, make_fleet: MakeFleet) -> None:
    # ui-dev also writes api/extra, which only the api part may change: its own boundary fails, api's passes.
    fleet, ids = parts_in_review(make_fleet, repo, ui="echo 2 > ui/version; echo x > api/extra")
    api, ui = fleet.get(ids["api"]), fleet.get(ids["ui"])
    assert (api.agent, ui.agent) == ("api-dev", "ui-dev")
    assert api.group == ui.group and api.spec == ui.spec == "app"
    assert (api.part_of, ui.part_of) == ({"spec": "app", "part": "api"}, {"spec": "app", "part": "ui"})
    assert api.spec_config["allow"] == ["api/**"] and ui.spec_config["allow"] == ["ui/**"]
    assert "orchestra/app--api/" in api.branch and "orchestra/app--ui/" in ui.branch
    assert api.gates["boundary"].status == "passed" and api.gates["api-check"].status == "passed"
    assert "agree" not in api.gates  # the spec's verify is for the integration
    assert ui.gates["boundary"].status == "failed" and ui.gates["boundary"].failures == ["api/extra (outside allow)"]
    lines = {line.split()[0]: line.split()[3] for line in cli("runs", cwd=repo).stdout.splitlines() if line[:1] == "r"}
    assert (lines[ids["api"]], lines[ids["ui"]]) == ("app/api", "app/ui")
    listed = json.loads(cli("runs", "--json", cwd=repo).stdout)
    assert {row["id"]: row["part_of"] for row in listed if row["agent"] != "integration"} == {
        ids["api"]: api.part_of, ids["ui"]: ui.part_of}


def test_the_integration_is_built_by_itself_once_every_part_is_in_review(repo: Path, make_fleet: MakeFleet) -> None:
    """The last part to enter review has its supervisor ask for the integration: it is built once, however many
    parts asked, and `orchestra integrate` then returns that one rather than building it again."""
    fleet, ids = parts_in_review(make_fleet, repo)
    found = wait_for(lambda: [run for run in fleet.runs() if run.integration is not None] or None, 30,
                     message="the integration to be built")
    assert len(found) == 1
    auto = wait_settled(fleet, found[0].id)
    assert [p["run"] for p in auto.integration["parts"]] == [ids["api"], ids["ui"]]
    assert auto.state == "review" and auto.gates["agree"].status == "passed", auto.message
    assert integrate(fleet, "app", ACTOR).id == auto.id
    assert [run.id for run in fleet.runs() if run.integration is not None] == [auto.id]
    assert fleet.ledger.entries() == []  # nothing replaced, nothing decided


def test_the_integration_merges_the_parts_and_runs_the_specs_verify(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo)
    run = built(fleet)
    assert run.state == "review" and run.agent == "integration" and run.group == fleet.get(ids["api"]).group
    assert run.gates["agree"].status == "passed" and run.gates["boundary"].status == "passed"
    assert readiness(run).ready
    assert [(p["part"], p["run"]) for p in run.integration["parts"]] == [("api", ids["api"]), ("ui", ids["ui"])]
    assert [p["candidate"] for p in run.integration["parts"]] == [fleet.get(ids[p]).candidate for p in ("api", "ui")]
    assert run.spec_config == fleet.score.spec("app").to_dict()  # held to the spec itself
    assert (Path(run.worktree) / "api" / "version").read_text() == "2\n"
    assert (Path(run.worktree) / "ui" / "version").read_text() == "2\n"
    assert sorted(run.changed_paths) == ["api/version", "ui/version"]
    listed = {row["id"]: row for row in json.loads(cli("runs", "--json", cwd=repo).stdout)}
    assert [p["run"] for p in listed[run.id]["integration"]["parts"]] == [ids["api"], ids["ui"]]


def test_the_integration_fails_when_the_whole_fails_the_specs_verify(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo, ui="echo 3 > ui/version")
    assert all(readiness(fleet.get(run_id)).ready for run_id in ids.values())  # each part passes its own gates
    run = built(fleet)
    assert run.gates["agree"].status == "failed"
    with pytest.raises(PartsNotReady, match="gate agree failed"):
        fleet.accept(run.id, actor=ACTOR)
    assert fleet.ledger.entries() == [] and fleet.get(run.id).state == "review"


def test_conflicting_parts_are_named_and_nothing_is_built(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo, api="echo 2 > api/version; echo api > shared.txt",
                                 ui="echo 2 > ui/version; echo ui > shared.txt")
    before = {run.id for run in fleet.runs()}
    with pytest.raises(PartsConflict) as refused:
        integrate(fleet, "app", ACTOR)
    assert "parts api and ui both change shared.txt" in str(refused.value)
    assert refused.value.conflicts == [{"parts": ["api", "ui"], "target": None, "paths": ["shared.txt"]}]
    assert {run.id for run in fleet.runs()} == before
    done = cli("integrate", "app", "--json", cwd=repo)
    assert done.returncode == 1 and "parts api and ui both change shared.txt" in done.stderr
    assert json.loads(done.stdout)["conflicts"][0]["parts"] == ["api", "ui"]
    for run_id in ids.values():  # the build the last part's supervisor asked for says it on each part's pane
        wait_for(lambda r=run_id: [text for text in notes(fleet, r) if text.startswith("not integrated:")
                                   and "parts api and ui both change shared.txt" in text], message=f"{run_id}'s note")


def test_a_part_conflicting_with_the_target_names_the_target(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo)
    (repo / "ui" / "version").write_text("5\n")
    git(repo, "commit", "-q", "-am", "ui moves on")
    with pytest.raises(PartsConflict, match=r"part ui and the target \(main\) both change ui/version"):
        integrate(fleet, ids["ui"], ACTOR)  # any run of the group names it


def test_accepting_merges_once_with_one_entry_listing_the_parts_and_closes_them(repo: Path,
                                                                                make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo)
    with pytest.raises(ActionRefused, match="part api of spec app: the parts merge together"):
        fleet.accept(ids["api"], actor=ACTOR)
    run = built(fleet)
    head = git(repo, "rev-parse", "main")
    accepted = fleet.accept(run.id, actor=ACTOR)
    assert accepted.state == "accepted"
    [entry] = fleet.ledger.entries()
    assert entry["action"] == "accept" and entry["run"] == run.id
    assert [(p["part"], p["run"], p["candidate"], p["tree"]) for p in entry["integration"]["parts"]] == [
        (p, ids[p], fleet.get(ids[p]).candidate, fleet.get(ids[p]).tree) for p in ("api", "ui")]
    assert git(repo, "rev-list", "--first-parent", f"{head}..main").split() == [accepted.merge_commit]
    shown = cli("ledger", "show", cwd=repo).stdout
    assert f"[integration of api ({ids['api']}), ui ({ids['ui']})]" in shown
    assert (repo / "api" / "version").read_text() == "2\n" and (repo / "ui" / "version").read_text() == "2\n"
    for run_id in ids.values():
        part = fleet.get(run_id)
        assert part.state == "accepted" and part.supervisor_pid is None
        assert part.decision["ledger_hash"] == entry["hash"] and part.decision["integration"] == run.id
        assert not Path(part.worktree).exists()
        assert git(repo, "merge-base", "--is-ancestor", part.candidate, "main") == ""  # on the target
    with pytest.raises(ActionRefused, match=f"merged with the other parts by {run.id}"):
        fleet.revert(ids["ui"], "no", actor=ACTOR)
    with pytest.raises(OrchestraError, match=f"merged already, by integration {run.id}"):
        integrate(fleet, "app", ACTOR)


def test_a_redirected_part_is_integrated_again_replacing_the_old_candidate(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo, ui='echo "${ORCHESTRA_REDIRECT:-3}" > ui/version')
    old = built(fleet)
    assert old.gates["agree"].status == "failed"
    fleet.redirect(ids["ui"], "2", actor=ACTOR)
    assert wait_settled(fleet, ids["ui"]).state == "review"
    with pytest.raises(ActionRefused, match=f"part ui \\({ids['ui']}\\) changed since"):
        fleet.accept(old.id, actor=ACTOR, force=True)
    with pytest.raises(ActionRefused, match="no agent works on it"):
        fleet.redirect(old.id, "again", actor=ACTOR)
    new = built(fleet)
    assert new.id != old.id and new.integration["replaces"] == [old.id]
    assert new.gates["agree"].status == "passed"
    gone = fleet.get(old.id)
    assert gone.state == "rejected" and gone.decision["reason"] == REPLACED_REASON.format(run=new.id)
    assert git(repo, "rev-parse", "--verify", "--quiet", gone.branch)  # its branch is kept
    assert fleet.accept(new.id, actor=ACTOR).state == "accepted"
    assert [entry["action"] for entry in fleet.ledger.entries()] == ["redirect", "reject", "accept"]


def test_integrating_is_refused_while_a_part_is_not_in_review(repo: Path, make_fleet: MakeFleet) -> None:
    fleet, ids = parts_in_review(make_fleet, repo, ui="echo no; exit 3")
    with pytest.raises(PartsNotInReview, match=f"part ui \\({ids['ui']}\\): failed"):
        integrate(fleet, "app", ACTOR)
    done = cli("integrate", fleet.get(ids["api"]).group, "--json", cwd=repo)
    assert done.returncode == 1 and "Not every part of spec app is in review" in done.stderr
    assert json.loads(done.stdout)["waiting"] == [{"part": "ui", "run": ids["ui"], "state": "failed"}]
    assert all(run.integration is None for run in fleet.runs())


def test_spawning_parts_refuses_n_and_several_agents(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(versioned(repo), score())
    with pytest.raises(BadUsage, match="--n does not apply"):
        fleet.spawn("app", count=2)
    with pytest.raises(BadUsage, match="at most one --agent"):
        fleet.spawn("app", ["api-dev", "ui-dev"])
    assert fleet.runs() == []
