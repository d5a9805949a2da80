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


def test_counts_in_messages_agree_with_their_nouns(repo: Path, make_fleet: MakeFleet,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from orchestra.core.base.words import plural
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert (plural(1, "entry"), plural(3, "entry"), plural(2, "match"), plural(2, "key")) == (
        "1 entry", "3 entries", "2 matches", "2 keys")
    assert plural(2, "child", "children") == "2 children"
    fleet = make_fleet(repo, score_text({"one": "echo 1 > one.txt"}, [{"id": "one", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("one")[0].id)
    fleet.accept(run.id)

    runs = run_cli(capsys, repo, "runs")[1]
    verdict = run_cli(capsys, repo, "ledger", "verify")[1]

    assert " 1 file +1 -0 " in runs and "1 files" not in runs
    assert verdict.startswith("ledger ok: 1 entry (0 signed)"), verdict


def test_accepting_a_run_whose_change_the_target_already_holds_says_nothing_to_merge(
        repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(repo, score_text({"same": "echo same > same.txt"}, [{"id": "same", "intent": "x"}]))
    assert run_cli(capsys, repo, "spawn", "same", "--agent", "same", "--agent", "same")[0] == 0
    first, second = (wait_settled(fleet, run_id) for run_id in ("r1", "r2"))
    assert run_cli(capsys, repo, "accept", first.id)[0] == 0
    tip = git(repo, "rev-parse", "main")

    code, out, err = run_cli(capsys, repo, "accept", second.id)

    assert code == 1 and out == ""
    assert err.startswith("orchestra: Nothing to merge: merging this run would not change main "
                          "(it holds these changes already)."), err
    assert "Nothing was merged or recorded" in err and f"orchestra reject {second.id}" in err
    assert git(repo, "rev-parse", "main") == tip  # no empty merge commit
    assert [e["action"] for e in fleet.ledger.entries()] == ["accept"]
    assert fleet.get(second.id).state == "review"


def test_stop_from_the_command_line(repo: Path, make_fleet: MakeFleet, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(repo, score_text({"slow": "echo wip > wip.txt; echo started; sleep 30"},
                                        [{"id": "build", "intent": "x"}]))
    assert run_cli(capsys, repo, "spawn", "build")[:2] == (0, "r1\n")
    wait_output(fleet, "r1", "started")
    code, out, _ = run_cli(capsys, repo, "stop", "r1")
    tip = git(repo, "rev-parse", fleet.get("r1").branch)
    assert code == 0 and out == f"Stopped r1; its work so far is committed on {fleet.get('r1').branch} as {tip[:10]}.\n"
    assert fleet.get("r1").state == "stopped"
    assert git(repo, "show", f"{fleet.get('r1').branch}:wip.txt") == "wip"


def test_stop_says_when_there_was_nothing_to_commit(repo: Path, make_fleet: MakeFleet,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(repo, score_text({"idle": "echo started; sleep 30"}, [{"id": "build", "intent": "x"}]))
    assert run_cli(capsys, repo, "spawn", "build")[:2] == (0, "r1\n")
    wait_output(fleet, "r1", "started")

    code, out, _ = run_cli(capsys, repo, "stop", "r1")

    assert code == 0 and out == "Stopped r1; nothing to commit: it had changed nothing.\n"
    assert git(repo, "rev-parse", fleet.get("r1").branch) == fleet.get("r1").base
    assert run_cli(capsys, repo, "stop", "r1")[::2] == (1, "orchestra: Run r1 is not working (it was stopped): "
                                                           "there is no agent to stop.\n")
    # The log says why once, without repeating the state's word.
    log = run_cli(capsys, repo, "log", "r1")[1].splitlines()
    assert log.count("[orchestra] stopped by the conductor") == 1
    assert not [line for line in log if "stopped stopped" in line]


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


def test_the_demo_says_where_its_ledger_is_when_it_starts(tmp_path: Path, make_fleet: MakeFleet,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from orchestra.core.onboarding.demo import DEMO_NOTICE, demo_notice
    lines = DEMO_NOTICE.splitlines()
    assert len(lines) <= 3 and all(len(line) <= 80 for line in lines)
    assert lines[-1] == "Ledger: ~/.local/share/orchestra/demos/<name>/.git/orchestra/ledger.jsonl"
    assert demo_notice(Path.home() / "demos" / "demo-3").splitlines()[-1] == \
        "Ledger: ~/demos/demo-3/.git/orchestra/ledger.jsonl"
    assert demo_notice(Path("/srv/demo")).splitlines()[-1] == "Ledger: /srv/demo/.git/orchestra/ledger.jsonl"

    root = tmp_path / "demo"
    code = main(["demo", str(root), "--no-open"])
    fleet = make_fleet(root)  # its runs are decided at teardown

    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == f"Demo repository: {root}"
    assert out[1] == f"Its ledger: {fleet.ledger.path} (`orchestra -C {root} ledger show`)"
    assert fleet.ledger.path == root / ".git" / "orchestra" / "ledger.jsonl"
    assert out[2].startswith(f"Started {len(fleet.runs())} runs of spec ")


def test_a_bare_command_line_means_what_the_parser_makes_of_it() -> None:
    """`orchestra` alone builds no parser (its first frame comes sooner): it must mean just the same."""
    from orchestra.cli import build_parser, no_arguments
    assert vars(no_arguments()) == vars(build_parser().parse_args([]))


def test_opening_the_fleet_pauses_the_collector_until_the_app_resumes_it(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`orchestra` starts the UI with no garbage collection (what it loads lives as long as the app); only
    opening the fleet does, and the app resumes collection once its first frame is up (tests/ui)."""
    import gc

    import orchestra.cli
    (repo / "orchestra.toml").write_text(score_text({"coder": "true"}, [{"id": "work", "intent": "x"}]))
    seen: list[bool] = []
    monkeypatch.setattr(orchestra.cli, "open_ui", lambda *args, **kwargs: seen.append(gc.isenabled()) or 0)
    monkeypatch.chdir(repo)
    try:
        assert main([]) == 0 and seen == [False]
        gc.enable()
        assert main(["runs"]) == 0 and gc.isenabled()  # a headless command keeps collecting
    finally:
        gc.enable()
