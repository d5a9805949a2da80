"""Best-of-N (issue 13): N runs of one spec started as a group, their candidates ranked on evidence (gates,
then findings, then diff size), and choosing one as a group decision: it is accepted, every other undecided
candidate is rejected with "another candidate chosen: rN", and the ledger links them.

The runs here are real: shell agents writing different candidates, a verify command telling them apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.base.errors import ActionRefused, BadUsage, OrchestraError
from orchestra.core.fleet import Fleet
from orchestra.core.fleet.compare import CHOSEN_REASON, choose, compare
from orchestra.core.policy import NotReady
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, wait_settled

ACTOR = "Test Conductor <conductor@example.test>"  # tests/conftest.py's git identity
SMALL = "mkdir -p src && printf 'ANSWER = 42\\n' > src/app.py"
LARGE = "mkdir -p src && printf 'ANSWER = 42\\n# why\\n# how\\n# more\\n' > src/app.py"
WRONG = "mkdir -p src && printf 'ANSWER = 41\\n' > src/app.py"
BROKEN = "echo 'model API unreachable'; exit 1"


def score(agents: dict[str, str], extra: str = "") -> str:
    text = "".join(f"[[agents]]\nname = \"{name}\"\nkind = \"shell\"\ncommand = '''{command}'''\n"
                   for name, command in agents.items())
    return (text + '[[specs]]\nid = "fix"\nintent = "ANSWER is 42"\nallow = ["src/**"]\n'
            "verify = ['grep -q 42 src/app.py']\n" + extra)


def settled_group(fleet: Fleet, agents: list[str] | None, count: int | None) -> list[str]:
    started = fleet.spawn("fix", agents, count=count)
    for run in started:
        wait_settled(fleet, run.id)
    return [run.id for run in started]


@pytest.fixture
def three(repo: Path, make_fleet: MakeFleet) -> tuple[Fleet, dict[str, str]]:
    """A settled group of three candidates: wrong (fails its check), large and small (both pass)."""
    fleet = make_fleet(repo, score({"wrong": WRONG, "large": LARGE, "small": SMALL}))
    ids = settled_group(fleet, None, 3)
    return fleet, {fleet.get(run_id).agent: run_id for run_id in ids}


def test_spawn_n_starts_that_many_runs_of_one_agent_as_one_group(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score({"small": SMALL, "wrong": WRONG}))
    ids = settled_group(fleet, ["small"], 3)
    runs = [fleet.get(run_id) for run_id in ids]
    assert [run.agent for run in runs] == ["small"] * 3
    assert len({run.group for run in runs}) == 1
    found = compare(fleet, runs[0].group, now=0)
    assert [set(c.same_tree) for c in found.candidates] == [set(ids) - {c.run.id} for c in found.candidates]


def test_spawn_n_takes_the_agents_in_turn(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score({"small": SMALL, "large": LARGE}))
    ids = settled_group(fleet, ["small", "large"], 3)
    assert [fleet.get(run_id).agent for run_id in ids] == ["small", "large", "small"]


@pytest.mark.parametrize("count", [0, -1, 17])
def test_spawn_n_out_of_range_is_bad_usage_and_starts_nothing(repo: Path, make_fleet: MakeFleet, count: int) -> None:
    fleet = make_fleet(repo, score({"small": SMALL}))
    with pytest.raises(BadUsage, match="--n must be between 1 and 16"):
        fleet.spawn("fix", count=count)
    assert fleet.runs() == []
    done = cli("spawn", "fix", "--n", str(count), cwd=repo)
    assert (done.returncode, done.stdout) == (2, "")
    assert "--n must be between" in done.stderr
    assert fleet.runs() == []


def test_candidates_are_ranked_on_gates_then_size(three: tuple[Fleet, dict[str, str]]) -> None:
    fleet, ids = three
    found = compare(fleet, ids["wrong"], now=0)  # any run of the group names it
    assert [c.run.agent for c in found.candidates] == ["small", "large", "wrong"]
    assert [c.rank for c in found.candidates] == [1, 2, 3]
    small, large, wrong = found.candidates
    assert small.ready and large.ready and not wrong.ready
    assert small.lines < large.lines
    assert wrong.failed == ("grep -q 42 src/app.py",) or len(wrong.failed) == 1
    assert wrong.cells()["gates"].startswith("✗ ")


def test_a_run_with_nothing_to_merge_ranks_last(repo: Path, make_fleet: MakeFleet) -> None:
    """A failed run (no change to judge) ranks after every candidate, even one whose gates fail."""
    fleet = make_fleet(repo, score({"broken": BROKEN, "wrong": WRONG, "small": SMALL}))
    ids = settled_group(fleet, None, 3)
    found = compare(fleet, ids[0], now=0)
    assert [(c.run.agent, c.run.state) for c in found.candidates] == [
        ("small", "review"), ("wrong", "review"), ("broken", "failed")]


def test_findings_rank_before_size(repo: Path, make_fleet: MakeFleet) -> None:
    """A candidate with a P2 finding ranks below a larger one without: findings come before size."""
    finding = json.dumps({"findings": [{"title": "nit", "body": "", "priority": "P2", "confidence": 1,
                                        "path": "src/app.py", "line_start": 1, "line_end": 1}],
                          "explanation": "read it"})
    clean = json.dumps({"findings": [], "explanation": "read it"})
    # The reviewer finds a nit in the small candidate only (it reads the diff on stdin).
    reviewer = f"if grep -q '# why'; then printf '%s' '{clean}'; else printf '%s' '{finding}'; fi"
    fleet = make_fleet(repo, '[review]\nagents = ["critic"]\nblock_on = "P1"\n' + score(
        {"small": SMALL, "large": LARGE}) + f"[[agents]]\nname = \"critic\"\nkind = \"shell\"\nrole = \"review\"\n"
        f"command = '''{reviewer}'''\n")
    ids = settled_group(fleet, ["small", "large"], 2)
    found = compare(fleet, ids[0], now=0)
    assert [c.run.agent for c in found.candidates] == ["large", "small"]
    assert found.candidates[1].findings["P2"] == 1
    assert found.candidates[1].cells()["findings"] == "P2:1"


def test_choosing_accepts_one_and_rejects_the_others_as_one_group_decision(
        three: tuple[Fleet, dict[str, str]]) -> None:
    fleet, ids = three
    done = choose(fleet, ids["small"], ids["small"], ACTOR)
    assert done.merged
    assert {run.id for run in done.rejected} == {ids["large"], ids["wrong"]}
    assert {fleet.get(run_id).state for run_id in (ids["large"], ids["wrong"])} == {"rejected"}
    entries = {entry["run"]: entry for entry in fleet.ledger.entries() if entry["action"] in ("accept", "reject")}
    accept = entries[ids["small"]]
    group = fleet.get(ids["small"]).group
    assert accept["group_decision"] == {"group": group, "chosen": ids["small"],
                                        "others": sorted([ids["large"], ids["wrong"]], key=lambda r: int(r[1:]))}
    for loser in (ids["large"], ids["wrong"]):
        assert entries[loser]["reason"] == CHOSEN_REASON.format(run=ids["small"])
        assert entries[loser]["group_decision"] == {"group": group, "chosen": ids["small"],
                                                    "accept_entry": accept["hash"]}
    assert compare(fleet, group, now=0).chosen.id == ids["small"]


def test_choosing_a_candidate_that_is_not_ready_is_refused_and_changes_nothing(
        three: tuple[Fleet, dict[str, str]]) -> None:
    fleet, ids = three
    with pytest.raises(NotReady):
        choose(fleet, ids["wrong"], ids["wrong"], ACTOR)
    assert {fleet.get(run_id).state for run_id in ids.values()} == {"review"}
    assert fleet.ledger.entries() == []


def test_a_forced_choice_records_what_was_not_ready(three: tuple[Fleet, dict[str, str]]) -> None:
    fleet, ids = three
    done = choose(fleet, ids["wrong"], ids["wrong"], ACTOR, force=True)
    assert done.merged and len(done.rejected) == 2
    [accept] = [entry for entry in fleet.ledger.entries() if entry["action"] == "accept"]
    assert accept["forced"] is True


def test_a_run_outside_the_group_cannot_be_chosen(three: tuple[Fleet, dict[str, str]], repo: Path) -> None:
    fleet, ids = three
    with pytest.raises(ActionRefused, match="is not a candidate of group"):
        choose(fleet, ids["small"], "r99", ACTOR)
    with pytest.raises(OrchestraError, match="There is no run or group 'g99'"):
        compare(fleet, "g99", now=0)
    assert fleet.ledger.entries() == []


def test_a_decided_group_cannot_be_chosen_again(three: tuple[Fleet, dict[str, str]]) -> None:
    fleet, ids = three
    fleet.reject(ids["wrong"], "not this one")
    fleet.accept(ids["large"])
    with pytest.raises(ActionRefused, match=f"{ids['large']} was accepted"):
        choose(fleet, ids["small"], ids["small"], ACTOR)
    assert fleet.get(ids["small"]).state == "review"


def test_choosing_again_after_a_crash_between_the_accept_and_the_rejects_finishes_them(
        three: tuple[Fleet, dict[str, str]]) -> None:
    """The accept is one decision and each reject another: a process killed between them leaves the others in
    review, and choosing the same candidate again rejects them, linked to the accept that was recorded."""
    fleet, ids = three
    group = fleet.get(ids["small"]).group
    link = {"group_decision": {"group": group, "chosen": ids["small"], "others": [ids["wrong"], ids["large"]]}}
    fleet.decisions.accept(ids["small"], ACTOR, None, False, extra_fields=link)  # the crash: no rejects yet
    done = choose(fleet, group, ids["small"], ACTOR)
    assert {run.id for run in done.rejected} == {ids["large"], ids["wrong"]}
    [accept] = [entry for entry in fleet.ledger.entries() if entry["action"] == "accept"]
    rejects = [entry for entry in fleet.ledger.entries() if entry["action"] == "reject"]
    assert {entry["group_decision"]["accept_entry"] for entry in rejects} == {accept["hash"]}


def test_compare_on_the_command_line(three: tuple[Fleet, dict[str, str]], repo: Path) -> None:
    fleet, ids = three
    group = fleet.get(ids["small"]).group
    shown = cli("compare", group, cwd=repo)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"group {group} · fix · 3 candidates")
    ranked = [line.split()[1] for line in lines[2:5]]
    assert ranked == [ids["small"], ids["large"], ids["wrong"]]
    assert lines[-1] == f"choose one: orchestra compare {group} --choose {ids['small']}"
    data = json.loads(cli("compare", group, "--json", cwd=repo).stdout)
    assert [(c["rank"], c["run"], c["ready"]) for c in data["candidates"]] == [
        (1, ids["small"], True), (2, ids["large"], True), (3, ids["wrong"], False)]
    refused = cli("compare", group, "--choose", ids["wrong"], cwd=repo)
    assert refused.returncode == 3 and "not ready" in refused.stderr
    chosen = cli("compare", group, "--choose", ids["small"], cwd=repo)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.startswith(f"Chose {ids['small']}: merged into")
    assert json.loads(cli("compare", group, "--json", cwd=repo).stdout)["chosen"] == ids["small"]


def test_under_an_approval_rule_choosing_records_an_approval_and_leaves_the_others(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score({"small": SMALL, "large": LARGE}, '[[approvals]]\npaths = ["src/**"]\n'
                                                                     "require = 2\n"))
    ids = settled_group(fleet, None, 2)
    done = choose(fleet, ids[0], ids[0], ACTOR)
    assert not done.merged and done.rejected == ()
    assert [fleet.get(run_id).state for run_id in ids] == ["review", "review"]
    assert [entry["action"] for entry in fleet.ledger.entries()] == ["approve"]
