"""Bad input is contained and reported clearly, and nothing is lost: hangs, floods, typos, broken repos."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from orchestra.core.base.errors import NotARepository, OrchestraError, RunNotFound
from orchestra.core.base.output import OUTPUT_LIMIT
from orchestra.core.git.repo import open_repository
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import cli, notes, output_lines, processes_with, score_text, wait_for, wait_settled


HANGS = {
    "in-the-foreground": "sleep {m} & sleep {m}; wait",
    "with-its-output-closed": "exec >/dev/null 2>&1; sleep {m}",
}


@pytest.mark.parametrize("hang", list(HANGS), ids=list(HANGS))
def test_an_agent_that_hangs_is_stopped_at_its_timeout_with_its_whole_process_group(
        repo: Path, make_fleet: MakeFleet, hang: str) -> None:
    marker = f"30.{uuid.uuid4().int % 10**6:06d}"  # a sleep only this test starts
    command = "echo begun > begun.txt; " + HANGS[hang].format(m=marker)
    fleet = make_fleet(repo, score_text({"hang": {"command": command, "timeout": 1}},
                                        [{"id": "work", "intent": "hang"}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=20)

    assert run.state == "failed"
    assert "timeout" in run.message and "1s" in run.message
    wait_for(lambda: not processes_with(marker), timeout=10,
             message=lambda: f"the agent's processes to end: {processes_with(marker)}")
    # What it did before it hung is kept on its branch.
    assert git(repo, "show", f"{run.branch}:begun.txt") == "begun"
    assert "stopped" in git(repo, "log", "-1", "--format=%s", run.branch)


def test_an_agents_exit_ends_its_turn_even_when_a_child_keeps_its_output_open(
        repo: Path, make_fleet: MakeFleet) -> None:
    marker = f"30.{uuid.uuid4().int % 10**6:06d}"
    fleet = make_fleet(repo, score_text({"quick": {"command": f"echo done > done.txt; sleep {marker} &", "timeout": 60}},
                                        [{"id": "work", "intent": "leave a child behind"}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=20)

    assert run.state == "review", run.message  # not working until the timeout
    assert not processes_with(marker)  # the child went with the agent
    assert git(repo, "show", f"{run.candidate}:done.txt") == "done"


def test_an_agent_that_floods_output_is_capped_and_the_run_completes(repo: Path, make_fleet: MakeFleet) -> None:
    line = "y" * 99  # 100 bytes a line: 30 MB of output, ~1.8x the cap
    fleet = make_fleet(repo, score_text(
        {"flood": f"yes {line} | head -c 30000000; echo done > done.txt"}, [{"id": "work", "intent": "flood"}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=60)

    assert run.state == "review", run.message
    size = fleet.store.events_path(run.id).stat().st_size
    assert OUTPUT_LIMIT // 2 < size <= OUTPUT_LIMIT + 64 * 1024, size
    said = notes(fleet, run.id)
    assert any("output limit reached" in n for n in said)
    assert any("bytes of output were not kept" in n for n in said)
    assert git(repo, "show", f"{run.candidate}:done.txt") == "done"
    kept = output_lines(fleet, run.id)
    assert kept[0] == line and set(kept) == {line}


def test_an_agent_command_that_does_not_exist_fails_with_its_status_and_stderr(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"ghost": "no-such-agent-cli --go"}, [{"id": "work", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "failed"
    assert run.exit_code == 127 and "exited with status 127" in run.message
    assert any("no-such-agent-cli" in text and "not found" in text for text in output_lines(fleet, run.id))


def test_spawning_an_unknown_spec_or_agent_names_the_known_ones(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"alpha": "true", "beta": "true"},
                                        [{"id": "first", "intent": "x"}, {"id": "second", "intent": "y"}]))
    with pytest.raises(OrchestraError, match="no spec 'thrid'.*first, second"):
        fleet.spawn("thrid")
    with pytest.raises(OrchestraError, match="no agent 'gamma'.*alpha, beta"):
        fleet.spawn("first", ["gamma"])
    with pytest.raises(RunNotFound, match="no run 'r9'"):
        fleet.get("r9")
    assert fleet.runs() == []
    assert git(repo, "branch", "--list", "orchestra/*") == ""


def test_open_repository_explains_a_directory_outside_git_and_a_repository_without_commits(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepository, match="not inside a git repository") as info:
        open_repository(plain)
    assert "git init" in str(info.value)
    with pytest.raises(NotARepository, match="does not exist"):
        open_repository(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(OrchestraError, match="no commits yet"):
        open_repository(empty)


def test_open_repository_finds_the_main_checkout_in_one_git_call_and_explains_a_bare_repository(
        tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.core.git import runner
    calls: list[tuple[str, ...]] = []
    real_run = runner._run

    def counted(cwd, args, *rest, **named):
        calls.append(args)
        return real_run(cwd, args, *rest, **named)

    monkeypatch.setattr(runner, "_run", counted)
    git(repo, "worktree", "add", "-q", str(tmp_path / "linked"))
    calls.clear()
    # Every command and the UI's first frame start here: the usual case asks git once.
    assert open_repository(tmp_path / "linked").root == repo.resolve()
    assert len(calls) == 1
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(OrchestraError, match="must be run in a work tree"):
        open_repository(tmp_path / "bare.git")


def assert_clean_failure(done, *expected: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


def test_the_cli_reports_bad_input_without_a_traceback(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert_clean_failure(cli("-C", str(plain), "runs"), "not inside a git repository")
    assert_clean_failure(cli("-C", str(empty), "spawn", "x"), "no commits yet")
    assert_clean_failure(cli("-C", str(repo), "spawn", "x"), "no orchestra.toml")
    (repo / "orchestra.toml").write_text(score_text({"alpha": "true"}, [{"id": "first", "intent": "x"}]))
    assert_clean_failure(cli("-C", str(repo), "spawn", "nope"), "no spec 'nope'", "first")
    assert_clean_failure(cli("-C", str(repo), "spawn", "first", "--agent", "zed"), "no agent 'zed'", "alpha")
    assert_clean_failure(cli("-C", str(repo), "accept", "r7"), "no run 'r7'")


def test_the_cli_names_the_file_and_line_of_a_broken_score(repo: Path) -> None:
    score = repo / "orchestra.toml"
    score.write_text('[[agents]]\nname = "alpha"\nkind = "shel"\ncommand = "true"\n')
    assert_clean_failure(cli("-C", str(repo), "runs"), f"{score}:3:", "kind", "'shell'")
    score.write_text('[[agents]]\nname = "alpha"\n[[specs]\nid = "x"\n')
    assert_clean_failure(cli("-C", str(repo), "spawn", "x"), f"{score}:3:", "TOML syntax error")
