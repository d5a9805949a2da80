"""The command line contract: spawn, runs --json, accept/reject/redirect/stop, ledger, init, guidance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.core.ledger.chain import canonical_json
from orchestra.core.score import STARTER_TOML, load_score
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_output, wait_settled

ACTOR = "Test Conductor <conductor@example.test>"


def run_cli(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-C", str(repo), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def two_agents(repo: Path, make_fleet: MakeFleet):
    return make_fleet(repo, score_text(
        {"alpha": 'echo "alpha ${ORCHESTRA_REDIRECT:-}" > src/alpha.txt',
         "beta": "echo beta > src/beta.txt; echo beta says hi"},
        [{"id": "build", "intent": "Build it", "verify": [{"name": "ok", "command": "true"}]}]))


def test_spawn_prints_the_ids_and_runs_json_lists_every_run(
        repo: Path, two_agents, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = two_agents
    assert run_cli(capsys, repo, "spawn", "build", "--agent", "beta") == (0, "r1\n", "")
    code, out, _ = run_cli(capsys, repo, "spawn", "build")
    assert code == 0 and out.split() == ["r2", "r3"]
    for run_id in ("r1", "r2", "r3"):
        wait_settled(fleet, run_id)

    code, out, _ = run_cli(capsys, repo, "runs", "--json")

    assert code == 0
    listed = json.loads(out)
    assert [(r["id"], r["agent"], r["spec"], r["state"]) for r in listed] == [
        ("r1", "beta", "build", "review"), ("r2", "alpha", "build", "review"), ("r3", "beta", "build", "review")]
    for item in listed:
        run = fleet.get(item["id"])
        assert item["branch"] == run.branch == f"orchestra/build/{run.id}/{run.agent}"
        assert item["worktree"] == run.worktree and Path(item["worktree"]).is_dir()
        assert item["candidate"] == run.candidate and item["target"] == "main"
        assert {g["name"]: g["status"] for g in item["gates"]} == {"boundary": "passed", "secrets": "passed",
                                                                   "ok": "passed"}
    code, out, _ = run_cli(capsys, repo, "runs")
    assert code == 0 and len(out.splitlines()) == 3 and "review" in out
    code, out, _ = run_cli(capsys, repo, "log", "r1")
    assert code == 0 and "beta says hi" in out.splitlines()
    code, out, _ = run_cli(capsys, repo, "diff", "r1")
    assert code == 0 and "+beta" in out and "src/beta.txt" in out


def test_accept_reject_and_redirect_from_the_command_line_are_recorded(
        repo: Path, two_agents, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = two_agents
    run_cli(capsys, repo, "spawn", "build")
    alpha, beta = (wait_settled(fleet, run_id) for run_id in ("r1", "r2"))

    code, out, _ = run_cli(capsys, repo, "redirect", alpha.id, "--message", "shout")
    assert code == 0 and f"Redirected {alpha.id}" in out
    alpha = wait_settled(fleet, alpha.id)
    assert git(repo, "show", f"{alpha.candidate}:src/alpha.txt") == "alpha shout"

    code, out, _ = run_cli(capsys, repo, "reject", beta.id, "--reason", "not needed")
    assert code == 0 and f"Rejected {beta.id}" in out and beta.branch in out
    code, out, _ = run_cli(capsys, repo, "accept", alpha.id)
    merge = git(repo, "rev-parse", "main")
    assert code == 0 and f"Accepted {alpha.id}" in out and merge[:10] in out
    assert (repo / "src" / "alpha.txt").read_text() == "alpha shout\n"
    assert {r.id: r.state for r in fleet.runs()} == {alpha.id: "accepted", beta.id: "rejected"}

    code, out, err = run_cli(capsys, repo, "accept", alpha.id)
    assert code == 1 and "already accepted" in err

    code, out, _ = run_cli(capsys, repo, "ledger", "path")
    assert code == 0 and out.strip() == str(fleet.ledger.path)
    entries = [json.loads(line) for line in Path(out.strip()).read_text().splitlines()]
    assert [(e["action"], e["run"], e["actor"]) for e in entries] == [
        ("redirect", alpha.id, ACTOR), ("reject", beta.id, ACTOR), ("accept", alpha.id, ACTOR)]
    assert entries[0]["instruction"] == "shout" and entries[1]["reason"] == "not needed"
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    code, out, _ = run_cli(capsys, repo, "ledger", "show")
    assert code == 0 and len(out.splitlines()) == 3 and "not needed" in out


def test_stop_from_the_command_line(repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(repo, score_text({"slow": "echo wip > wip.txt; echo started; sleep 30"},
                                        [{"id": "build", "intent": "x"}]))
    assert run_cli(capsys, repo, "spawn", "build")[:2] == (0, "r1\n")
    wait_output(fleet, "r1", "started")
    code, out, _ = run_cli(capsys, repo, "stop", "r1")
    assert code == 0 and "Stopped r1" in out
    assert fleet.get("r1").state == "stopped"
    assert git(repo, "show", f"{fleet.get('r1').branch}:wip.txt") == "wip"


def test_ledger_verify_passes_then_fails_after_an_entry_is_altered(
        repo: Path, two_agents, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = two_agents
    run_cli(capsys, repo, "spawn", "build")
    for run_id in ("r1", "r2"):
        wait_settled(fleet, run_id)
        run_cli(capsys, repo, "reject", run_id, "--reason", f"reason {run_id}")
    code, out, _ = run_cli(capsys, repo, "ledger", "verify")
    assert code == 0 and "2 entries" in out

    path = fleet.ledger.path
    lines = path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["reason"] = "a nicer reason"
    lines[0] = canonical_json(entry)
    path.write_text("\n".join(lines) + "\n")

    code, out, err = run_cli(capsys, repo, "ledger", "verify")
    assert code != 0
    assert "line 1" in err and "altered" in err


def test_a_garbled_ledger_is_reported_without_a_traceback(
        repo: Path, two_agents, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = two_agents
    run_cli(capsys, repo, "spawn", "build", "--agent", "alpha")
    wait_settled(fleet, "r1")
    fleet.ledger.path.parent.mkdir(parents=True, exist_ok=True)
    fleet.ledger.path.write_text('{"action": "accept", "run": "r0"\n')
    try:
        code, _, err = run_cli(capsys, repo, "ledger", "show")
        assert code == 1 and "line 1" in err
        code, _, err = run_cli(capsys, repo, "accept", "r1")
        assert code == 1 and "ledger cannot record" in err and "Nothing was changed" in err
        assert fleet.get("r1").state == "review"
    finally:
        fleet.ledger.path.unlink()


def test_init_writes_a_working_starter_and_never_overwrites(
        repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, repo, "init")
    score = repo / "orchestra.toml"
    assert code == 0 and str(score) in out
    assert score.read_text() == STARTER_TOML
    assert load_score(score).specs

    score.write_text("# mine\n")
    code, out, _ = run_cli(capsys, repo, "init")
    assert code != 0 and "already exists" in out
    assert score.read_text() == "# mine\n"

    # The starter's agent and gates really run.
    fleet = make_fleet(repo, STARTER_TOML)
    spec = fleet.score.specs[0]
    run = wait_settled(fleet, fleet.spawn(spec.id)[0].id)
    assert run.state == "review", run.message
    assert all(g.status == "passed" for g in run.gates.values()), run.gates


def test_without_a_score_orchestra_explains_init_and_demo(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, repo)
    assert code == 0
    assert "orchestra init" in out and "orchestra demo" in out and "orchestra.toml" in out
    assert not (repo / "orchestra.toml").exists()
    code, _, err = run_cli(capsys, repo, "spawn", "x")
    assert code == 1 and "orchestra init" in err
