"""The proving gate: the tests a candidate adds or changes must fail on the base it started from; the base's
tree is exported faithfully (git.export); and end to end through the fleet, with and without a sandbox."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from orchestra.core.gates.prove import NO_TESTS, PASSES_ON_BASE, changed_tests, in_tests
from orchestra.core.git.export import export_tree
from orchestra.core.jail import probe
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import processes_with, score_text, wait_for, wait_settled
from tests.core.test_coverage_gate import Elsewhere, commit_all, verify

PY = sys.executable


def test_test_files_are_told_by_their_names_and_places() -> None:
    changed = ["src/app.py", "test_app.py", "pkg/app_test.py", "tests/data/input.json", "pkg/tests/conftest.py",
               "web/button.test.tsx", "web/api.spec.ts", "web/api.spec.tsx", "cmd/main_test.go", "spec/models/user_spec.rb",
               "lib/user_spec.rb", "web/__tests__/app.js", "docs/testing.md", "src/contest.py", "conftest.py"]
    assert changed_tests(changed) == sorted([
        "test_app.py", "pkg/app_test.py", "tests/data/input.json", "pkg/tests/conftest.py", "web/button.test.tsx",
        "web/api.spec.ts", "cmd/main_test.go", "spec/models/user_spec.rb", "web/__tests__/app.js", "conftest.py"])


def test_a_failing_test_is_matched_to_its_file_by_path_or_module() -> None:
    tests = ["tests/test_calc.py"]
    assert in_tests("tests/test_calc.py::test_half", tests) and in_tests("tests/test_calc.py", tests)
    assert in_tests("tests.test_calc.TestHalf::test_odd", tests) and in_tests("test_calc::test_half", tests)
    assert not in_tests("tests/test_other.py::test_half", tests) and not in_tests("tests.test_calcs::t", tests)


def test_a_commits_tree_is_exported_as_a_checkout_with_files_of_another_tree_on_top(repo: Path, tmp_path: Path) -> None:
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("src/app.py")
    (repo / ".gitattributes").write_text("packaging.txt export-ignore\n")
    (repo / "packaging.txt").write_text("kept\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text("old\n")
    base = commit_all(repo, "base")
    (repo / "tests" / "test_app.py").write_text("new\n")
    (repo / "tests" / "test_more.py").write_text("more\n")
    (repo / "src" / "app.py").write_text("changed\n")
    candidate = commit_all(repo)
    dest = tmp_path / "out" / "base"
    export_tree(repo / ".git", base, dest, ("tests/test_app.py", "tests/test_more.py", "tests/gone.py"),
                git(repo, "rev-parse", f"{candidate}^{{tree}}"))
    assert (dest / "src" / "app.py").read_text() == "def answer():\n    return 41\n"  # the base's
    assert (dest / "tests" / "test_app.py").read_text() == "new\n" and (dest / "tests" / "test_more.py").exists()
    assert os.access(dest / "run.sh", os.X_OK) and os.readlink(dest / "link") == "src/app.py"
    assert (dest / "packaging.txt").exists()  # export-ignore is for archives, not for a checkout
    assert not (dest / ".git").exists() and sorted(p.name for p in dest.parent.iterdir()) == ["base"]
    assert git(repo, "status", "--porcelain") == ""  # the repository's index was not touched


@pytest.fixture
def base(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def change(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    commit_all(root)


FIX = {"src/app.py": "def answer():\n    return 42\n"}
CHECK = {"name": "tests", "command": "sh tests/check.sh", "prove": True}


async def test_a_new_test_that_fails_on_the_base_proves_the_change(repo: Path, base: str) -> None:
    change(repo, {**FIX, "tests/check.sh": "grep -q 'return 42' src/app.py\n"})
    elsewhere = Elsewhere(repo / ".git", repo.parent / "elsewhere")
    gate = await verify(repo, base, CHECK, elsewhere)
    assert (gate.kind, gate.status) == ("prove", "passed")
    assert gate.summary == "passes on the candidate (exit 0); fails (exit 1) on the base with the new tests"
    assert gate.details == {"tests": ["tests/check.sh"], "base_exit": 1, "base_summary": "exit 1"}
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    assert [(o.commit, o.label, o.overlay, o.overlay_from) for o in elsewhere.calls] == [
        (base, "proof", ("tests/check.sh",), tree)]
    await verify(repo, base, CHECK, elsewhere)
    assert len(elsewhere.calls) == 1  # kept: same base, command and tests
    change(repo, {"tests/check.sh": "grep -qw 42 src/app.py\n"})
    gate = await verify(repo, base, CHECK, elsewhere)
    assert len(elsewhere.calls) == 2 and gate.status == "passed"  # the tests changed: the base runs them again


async def test_a_new_test_that_passes_on_the_base_proves_nothing(repo: Path, base: str) -> None:
    change(repo, {**FIX, "tests/check.sh": "grep -q 'def answer' src/app.py\n"})
    gate = await verify(repo, base, CHECK, Elsewhere(repo / ".git", repo.parent / "elsewhere"))
    assert (gate.status, gate.details["base_exit"]) == ("failed", 0)
    assert gate.summary == f"passes on the candidate (exit 0), but {PASSES_ON_BASE} (exit 0)"


async def test_a_change_without_tests_proves_nothing(repo: Path, base: str) -> None:
    change(repo, FIX)
    elsewhere = Elsewhere(repo / ".git", repo.parent / "elsewhere")
    gate = await verify(repo, base, {**CHECK, "command": "true"}, elsewhere)
    assert (gate.status, gate.summary, gate.details["tests"], elsewhere.calls) == ("failed", NO_TESTS, [], [])


async def test_a_base_that_fails_only_in_old_tests_proves_nothing(repo: Path, base: str) -> None:
    def pytest_like(failing: str) -> str:
        return (f"if grep -q 'return 42' src/app.py; then echo '2 passed'; else echo 'FAILED {failing} - boom'; "
                "echo '1 failed, 1 passed in 0.01s'; exit 1; fi")
    change(repo, {**FIX, "tests/test_new.py": "def test_new(): ...\n"})
    elsewhere = Elsewhere(repo / ".git", repo.parent / "elsewhere")
    gate = await verify(repo, base, {**CHECK, "command": pytest_like("tests/test_old.py::test_a")}, elsewhere)
    assert gate.status == "failed"
    assert gate.summary == ("passes on the candidate (2 passed), but the base fails only in other tests "
                            "(tests/test_old.py::test_a): the new tests prove nothing")
    gate = await verify(repo, base, {**CHECK, "command": pytest_like("tests/test_new.py::test_new")}, elsewhere)
    assert (gate.status, gate.summary) == (
        "passed", "passes on the candidate (2 passed); fails (1 failed, 1 passed) on the base with the new tests")


async def test_a_failing_candidate_is_not_run_on_the_base(repo: Path, base: str) -> None:
    change(repo, {"tests/check.sh": "exit 1\n"})
    elsewhere = Elsewhere(repo / ".git", repo.parent / "elsewhere")
    gate = await verify(repo, base, CHECK, elsewhere)
    assert (gate.status, gate.summary, elsewhere.calls) == (
        "failed", "exit 1 on the candidate; not run on the base", [])


async def test_without_a_supervisor_a_proof_fails_closed(repo: Path, base: str) -> None:
    change(repo, {**FIX, "tests/check.sh": "grep -q 'return 42' src/app.py\n"})
    gate = await verify(repo, base, CHECK, None)
    assert (gate.status, gate.summary) == ("failed", "checks cannot run on another tree here (no supervisor)")


# -- end to end: pytest on the base's tree with the new tests, in the run's jail ---------------------------------

def halving_project(repo: Path) -> None:
    """src/calc.py with a bug in half (floor division) and a test of double; the agents' commands."""
    (repo / "src" / "calc.py").write_text("def double(x):\n    return 2 * x\n\n\ndef half(x):\n    return x // 2\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_double.py").write_text("from calc import double\n\n\ndef test_double():\n"
                                                   "    assert double(2) == 4\n")
    commit_all(repo, "calc")


FIXER = ("sed -i 's#x // 2#x / 2#' src/calc.py && printf 'from calc import half\\n\\n\\ndef test_half():\\n"
         "    assert half(3) == 1.5\\n' > tests/test_half.py")
IDLER = ("sed -i 's#x // 2#x / 2#' src/calc.py && printf 'from calc import double\\n\\n\\ndef test_zero():\\n"
         "    assert double(0) == 0\\n' > tests/test_zero.py")
PROVE = {"name": "tests", "command": f"{PY} -m pytest -q -p no:cacheprovider tests", "prove": True}


def prove_fleet(repo: Path, make_fleet: MakeFleet, sandbox: str | None = None):
    halving_project(repo)
    return make_fleet(repo, score_text({"fixer": FIXER, "idler": IDLER}, [
        {"id": "halve", "intent": "half(3) is 1.5", "verify": [PROVE]}], sandbox=sandbox))


@pytest.mark.skipif(not probe().works, reason="needs bubblewrap: ./dev test installs it")
def test_proofs_in_the_sandbox_pass_a_test_that_fails_on_the_base_and_fail_one_that_does_not(
        repo: Path, make_fleet: MakeFleet) -> None:
    fleet = prove_fleet(repo, make_fleet)
    started = time.monotonic()
    fixer, idler = (wait_settled(fleet, run.id, timeout=90) for run in fleet.spawn("halve", ["fixer", "idler"]))
    print(f"two proving runs settled in {time.monotonic() - started:.1f}s")
    assert fixer.sandbox["sandboxed"] is True
    gate = fixer.gates["tests"]
    assert (gate.kind, gate.status, gate.tree) == ("prove", "passed", fixer.tree), gate.summary
    assert gate.summary == "passes on the candidate (2 passed); fails (1 failed, 1 passed) on the base with the new tests"
    assert gate.details["tests"] == ["tests/test_half.py"] and gate.details["base_exit"] == 1
    log = (fleet.store.run_dir(fixer.id) / "gates" / "proof" / "tests.log").read_text()
    assert "FAILED tests/test_half.py::test_half - assert 1 == 1.5" in log
    gate = idler.gates["tests"]
    assert (gate.status, gate.details["base_exit"]) == ("failed", 0)
    assert gate.summary == f"passes on the candidate (2 passed), but {PASSES_ON_BASE} (2 passed)"
    assert list((fleet.repo.jails_dir / fixer.id / "trees").iterdir()) == []


def test_proofs_work_without_a_sandbox(repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRA_BWRAP", "/nonexistent")
    fleet = prove_fleet(repo, make_fleet)
    fixer = wait_settled(fleet, fleet.spawn("halve", ["fixer"])[0].id, timeout=90)
    assert fixer.sandbox["sandboxed"] is False
    gate = fixer.gates["tests"]
    assert (gate.status, gate.summary) == (
        "passed", "passes on the candidate (2 passed); fails (1 failed, 1 passed) on the base with the new tests")


# -- the other tree itself: where the command runs, what it finds there, what is left afterwards --------------

async def test_a_check_on_another_tree_runs_in_that_tree_with_its_own_code_first_and_leaves_nothing(
        repo: Path, make_fleet: MakeFleet) -> None:
    from orchestra.core.gates.evidence import OtherTree
    from orchestra.core.supervise.jails import jail_of_run
    from orchestra.core.supervise.supervisor import Supervisor

    (repo / ".gitignore").write_text(".venv/\n")
    (repo / "cov.json").write_text("{}\n")  # a stale report, committed: removed before the command runs
    base = commit_all(repo, "report")
    fleet = make_fleet(repo, score_text({"coder": "mkdir -p .venv && echo deps > .venv/marker && echo 42 > src/app.py"},
                                        [{"id": "work", "intent": "x"}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    supervisor = Supervisor(fleet.store, run.id)
    supervisor.jail = jail_of_run(fleet.store.state_dir, supervisor.run)
    trees = fleet.repo.jails_dir / run.id / "trees"
    (trees / "999999999-base-0a0b0c0d" / "left").mkdir(parents=True)  # a dead supervisor's
    command = (f'pwd; echo "$ORCHESTRA_WORKTREE"; test ! -e cov.json && cat .venv/marker && '
               f'{PY} -c "import app, sys; print(app.__file__)" && echo written > out.txt')
    check = {"name": "where", "command": command, "coverage": "cov.json"}
    gate, seen = await supervisor.run_elsewhere(OtherTree(check, base, "base", collect=lambda d: (
        d, (d / "out.txt").read_text())))
    directory, written = seen
    assert gate.status == "passed", gate.output_tail
    assert gate.output_tail == [str(directory), str(directory), "deps", f"{directory}/src/app.py"]
    assert directory.parent == trees and written == "written\n"
    assert list(trees.iterdir()) == [] and (Path(run.worktree) / ".venv" / "marker").exists()  # links not followed
    log = fleet.store.run_dir(run.id) / "gates" / "base" / "where.log"
    assert log.read_text().splitlines()[-1] == f"{directory}/src/app.py"

    marker = f"30.{uuid.uuid4().int % 10**6:06d}"
    waiting = asyncio.ensure_future(supervisor.run_elsewhere(OtherTree(
        {"name": "slow", "command": f"touch started; sleep {marker}"}, base, "base")))
    for _ in range(600):  # the loop must run for the command to start: no blocking wait here
        if list(trees.glob("*/started")):
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - started < 5 and list(trees.iterdir()) == []
    # The sandbox's processes go with it (its pid namespace ends a moment after bubblewrap is killed).
    wait_for(lambda: not processes_with(f"sleep {marker}"), timeout=5, message="the command to be ended")
