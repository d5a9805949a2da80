"""Runs of shell agents through the fleet: states, environment, output, commits, gates and stale evidence."""

from __future__ import annotations

import uuid
from pathlib import Path

from orchestra.core.git.snapshot import working_tree_id
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import events, notes, output_lines, processes_with, score_text, wait_for, wait_settled

AGENT = "coder (orchestra agent) <coder@agents.orchestra.invalid>"


def one_spec(fleet_maker: MakeFleet, repo: Path, command: str, **spec: object):
    """A fleet with one shell agent `coder` running command, and one spec `work` with extra keys."""
    return fleet_maker(repo, score_text({"coder": command}, [{"id": "work", "intent": "Make it better", **spec}]))


def test_a_successful_agent_goes_queued_working_review_and_its_work_is_the_candidate(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "printf 'def answer():\\n    return 42\\n' > src/app.py; echo done")
    base = git(repo, "rev-parse", "main")
    run = fleet.spawn("work")[0]
    assert run.state == "queued"

    run = wait_settled(fleet, run.id)

    assert run.state == "review", run.message
    assert [e["state"] for e in events(fleet, run.id, "state")] == ["queued", "working", "review"]
    assert run.exit_code == 0 and run.base == base and run.target == "main"
    assert run.candidate == git(repo, "rev-parse", run.branch)
    assert git(repo, "rev-parse", f"{run.candidate}^") == base
    assert git(repo, "show", f"{run.candidate}:src/app.py") == "def answer():\n    return 42"
    assert git(repo, "log", "-1", "--format=%an <%ae>", run.candidate) == AGENT
    assert run.tree == git(repo, "rev-parse", f"{run.candidate}^{{tree}}")
    assert (run.files_changed, run.lines_added, run.lines_removed) == (1, 1, 1)
    assert run.changed_paths == ["src/app.py"]
    assert "-    return 41\n+    return 42" in fleet.diff(run)
    assert any(n.startswith(f"committed the agent's changes as {run.candidate[:10]}") for n in notes(fleet, run.id))
    # The user's checkout never sees the agent's edit.
    assert (repo / "src" / "app.py").read_text() == "def answer():\n    return 41\n"


def test_a_non_zero_exit_fails_the_run_with_its_status_and_keeps_its_work(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo partial > partial.txt; echo 'giving up' >&2; exit 3")
    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    assert run.state == "failed"
    assert "exited with status 3" in run.message
    assert run.exit_code == 3
    assert "giving up" in output_lines(fleet, run.id)
    assert git(repo, "show", f"{run.branch}:partial.txt") == "partial"
    assert run.gates == {}  # a failed run is not verified


def test_the_agent_gets_its_task_spec_and_run_in_the_environment_and_runs_in_its_worktree(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, 'printf "%s\\n" "$ORCHESTRA_TASK" "$ORCHESTRA_SPEC" "$ORCHESTRA_RUN" '
                     '"$ORCHESTRA_WORKTREE" "$PWD" "${ORCHESTRA_REDIRECT-unset}" > env.txt')
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review", run.message
    lines = git(repo, "show", f"{run.candidate}:env.txt").splitlines()
    assert lines[:4] == ["Make it better", "work", run.id, run.worktree]
    assert Path(lines[4]).resolve() == Path(run.worktree).resolve()
    assert lines[5] == "unset"


def test_a_free_text_task_reaches_the_agent(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, 'printf "%s|%s" "$ORCHESTRA_TASK" "$ORCHESTRA_SPEC" > task.txt')
    run = fleet.spawn(None, ["coder"], task="Rename the helper")[0]
    assert run.branch == f"orchestra/task/{run.id}/coder" and run.spec is None
    run = wait_settled(fleet, run.id)
    assert git(repo, "show", f"{run.candidate}:task.txt") == "Rename the helper|"


def test_output_is_logged_line_by_line_stdout_and_stderr_cleaned_of_escape_codes(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo one; echo two >&2; printf 'three\\n\\033[31mred\\033[0m\\nno newline'")
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review"
    assert output_lines(fleet, run.id) == ["one", "two", "three", "red", "no newline"]
    assert all(isinstance(e["t"], float) for e in events(fleet, run.id))


def test_an_agent_that_changes_nothing_still_reaches_review_with_an_empty_diff(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "true")
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review"
    assert run.candidate == run.base and run.changed_paths == [] and fleet.diff(run) == ""


def test_passing_and_failing_verify_commands_become_gates_bound_to_the_tree(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo x > x.txt", verify=[
        {"name": "ok", "command": "test -f x.txt"},
        {"name": "bad", "command": "echo nope; exit 2"},
    ])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)

    assert list(run.gates) == ["boundary", "secrets", "ok", "bad"]
    ok, bad = run.gates["ok"], run.gates["bad"]
    assert (ok.status, ok.exit_code, ok.summary) == ("passed", 0, "exit 0")
    assert (bad.status, bad.exit_code, bad.summary) == ("failed", 2, "exit 2")
    assert bad.output_tail == ["nope"]
    assert {g.tree for g in run.gates.values()} == {run.tree}
    assert all(not g.is_stale(run.tree) for g in run.gates.values())
    assert run.gates["boundary"].status == "passed"  # no allow/deny: anything goes
    log = fleet.store.run_dir(run.id) / "gates" / "bad.log"
    assert log.read_text() == "nope\n"


def test_pytest_style_output_is_parsed_into_counts_and_failing_tests(repo: Path, make_fleet: MakeFleet) -> None:
    fake_pytest = ("echo 'FAILED tests/test_x.py::test_y - assert 1 == 2'; "
                   "echo '========== 1 failed, 2 passed in 0.01s =========='; exit 1")
    fleet = one_spec(make_fleet, repo, "true", verify=[{"name": "tests", "command": fake_pytest}])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    gate = run.gates["tests"]
    assert gate.status == "failed" and gate.exit_code == 1
    assert (gate.passed, gate.failed) == (2, 1)
    assert gate.failures == ["tests/test_x.py::test_y"]
    assert gate.summary == "1 failed, 2 passed"


def test_a_junit_report_is_parsed_and_does_not_count_as_an_edit(repo: Path, make_fleet: MakeFleet) -> None:
    report = ('<testsuite><testcase classname="pkg.Calc" name="test_add"/>'
              '<testcase classname="pkg.Calc" name="test_div"><failure message="boom"/></testcase>'
              '<testcase classname="pkg.Calc" name="test_skip"><skipped/></testcase>'
              '<testcase classname="pkg.Calc" name="test_sub"/></testsuite>')
    fleet = one_spec(make_fleet, repo, "true", verify=[
        {"name": "junit", "command": f"mkdir -p out && echo '{report}' > out/report.xml; exit 1",
         "junit": "out/report.xml"}])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    gate = run.gates["junit"]
    assert gate.status == "failed"
    assert (gate.passed, gate.failed) == (2, 1)
    assert gate.failures == ["pkg.Calc::test_div"]
    assert (Path(run.worktree) / "out" / "report.xml").exists()
    # The report the gate wrote is not an edit: a real edit made afterwards is committed on its own.
    (Path(run.worktree) / "edit.txt").write_text("edit\n")
    run = wait_for(lambda: (r := fleet.get(run.id)).candidate != r.base and r, message="the edit to be committed")
    assert git(repo, "rev-parse", f"{run.candidate}^") == run.base
    assert git(repo, "ls-tree", "-r", "--name-only", run.candidate).splitlines() == [
        "README.md", "edit.txt", "orchestra.toml", "src/app.py"]


def test_the_boundary_gate_lists_paths_outside_allow_and_inside_deny(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo ok > src/ok.py; echo k > src/secret_key.py; echo x >> README.md",
                     allow=["src/**"], deny=["src/secret*"])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    gate = run.gates["boundary"]
    assert gate.status == "failed" and gate.kind == "boundary" and gate.tree == run.tree
    assert sorted(gate.failures) == ["README.md (outside allow)", "src/secret_key.py (denied)"]
    assert gate.summary == "2 path(s) out of bounds"


def test_the_boundary_gate_passes_inside_bounds(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo ok > src/ok.py", allow=["src/**"], deny=["src/secret*"])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.gates["boundary"].status == "passed" and run.gates["boundary"].failures == []


def test_an_edit_during_review_is_committed_and_the_gates_rerun_on_the_new_tree(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = one_spec(make_fleet, repo, "echo first > work.txt",
                     verify=[{"name": "fixed", "command": "grep -q fixed work.txt"}], deny=["secret.txt"])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    first_tree, first_candidate = run.tree, run.candidate
    assert run.gates["fixed"].status == "failed" and run.gates["fixed"].tree == first_tree
    assert run.gates["boundary"].status == "passed"

    (Path(run.worktree) / "work.txt").write_text("fixed by hand\n")
    (Path(run.worktree) / "secret.txt").write_text("oops\n")

    def rerun_on_new_tree():
        current = fleet.get(run.id)
        return current if current.tree != first_tree and current.gates["fixed"].tree == current.tree and \
            current.gates["fixed"].status in ("passed", "failed") and \
            current.gates["boundary"].tree == current.tree else None
    run = wait_for(rerun_on_new_tree, timeout=30, message="the gates to rerun on the edited tree")
    run = wait_settled(fleet, run.id)

    assert run.tree != first_tree and run.candidate != first_candidate
    assert git(repo, "rev-parse", f"{run.candidate}^") == first_candidate
    assert git(repo, "rev-parse", run.branch) == run.candidate
    assert git(repo, "log", "-1", "--format=%an", run.candidate) == "Test Conductor"
    assert git(repo, "show", f"{run.candidate}:work.txt") == "fixed by hand"
    assert run.tree == working_tree_id(fleet.tree(run))
    assert run.gates["fixed"].status == "passed"
    assert run.gates["boundary"].status == "failed" and run.gates["boundary"].failures == ["secret.txt (denied)"]
    assert sorted(run.changed_paths) == ["secret.txt", "work.txt"]
    # The event log shows the old result, then the rerun on the new tree.
    fixed = [(e["tree"], e["status"]) for e in events(fleet, run.id, "gate") if e["name"] == "fixed"
             and e["status"] in ("passed", "failed")]
    assert fixed[0] == (first_tree, "failed") and fixed[-1] == (run.tree, "passed")
    assert any("worktree changed during review" in n for n in notes(fleet, run.id))


def test_a_verify_command_that_hangs_is_stopped_at_its_timeout(repo: Path, make_fleet: MakeFleet) -> None:
    marker = f"30.{uuid.uuid4().int % 10**6:06d}"
    fleet = one_spec(make_fleet, repo, "true", verify=[
        {"name": "hang", "command": f"echo hanging; exec >/dev/null 2>&1; sleep {marker}", "timeout": 1},
        {"name": "after", "command": "true"}])
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=20)
    gate = run.gates["hang"]
    assert gate.status == "failed" and gate.summary == "timed out after 1s"
    assert gate.output_tail == ["hanging"]
    assert run.gates["after"].status == "passed"  # the next gate still ran
    wait_for(lambda: not processes_with(marker), timeout=10, message="the gate's processes to end")


def test_moving_a_file_out_of_a_denied_path_breaks_the_boundary(repo: Path, make_fleet: MakeFleet) -> None:
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.txt").write_text("not for agents\n" * 5)
    git(repo, "add", "secrets")
    git(repo, "commit", "-q", "-m", "a secret")
    fleet = one_spec(make_fleet, repo, "mv secrets/key.txt src/key.txt", allow=["src/**"], deny=["secrets/**"])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.changed_paths == ["src/key.txt"]  # shown as one rename
    gate = run.gates["boundary"]
    assert gate.status == "failed"
    assert "secrets/key.txt (denied)" in gate.failures and "src/key.txt (outside allow)" not in gate.failures


def test_a_resumed_watcher_does_not_verify_a_tree_whose_gates_are_final(repo: Path, make_fleet: MakeFleet) -> None:
    import asyncio

    from orchestra.core.gates.verifier import Verifier
    from orchestra.core.runs.run import Gate
    fleet = one_spec(make_fleet, repo, "echo ok > ok.txt", verify=[{"name": "fine", "command": "true"}])
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    verifier = Verifier(fleet.store, run.id, fleet.tree(run), asyncio.Event())
    assert verifier.verified()
    fleet.store.update(run.id, lambda r: r.gates.__setitem__("fine", Gate(name="fine", status="running", tree=r.tree)))
    assert not verifier.verified()


def test_a_junit_report_that_leads_out_of_the_worktree_or_blocks_is_not_read(repo: Path, make_fleet: MakeFleet,
                                                                              tmp_path: Path) -> None:
    outside = tmp_path / "outside.xml"
    outside.write_text('<testsuite><testcase classname="t" name="a"/></testsuite>')
    fleet = one_spec(make_fleet, repo, "echo ok > ok.txt", verify=[
        {"name": "linked", "command": f"ln -sf {outside} out.xml; exit 0", "junit": "out.xml"},
        {"name": "fifo", "command": "mkfifo pipe.xml; exit 0", "junit": "pipe.xml"}])
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=60)
    assert (run.gates["linked"].passed, run.gates["linked"].status) == (None, "passed")  # no counts from outside
    assert (run.gates["fifo"].passed, run.gates["fifo"].status) == (None, "passed")      # and no hang on a FIFO
