"""The demo repository: its shape, its real bug, its score, and the whole demo run through the core."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.onboarding.demo import DEMO_NOTICE, create_demo, is_demo
from orchestra.core.base.errors import OrchestraError
from orchestra.core.fleet import Fleet
from orchestra.core.gates.reports import parse_pytest
from orchestra.core.git.repo import open_repository
from orchestra.core.runs.run import Run
from orchestra.core.score import load_score
from tests.conftest import git

BUG_TEST = "tests/test_stats.py::test_mean"
SETTLE_TIMEOUT = 60.0


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return create_demo(tmp_path / "demo", python=sys.executable)


def run_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=root, capture_output=True, text=True, timeout=120)


def test_demo_is_a_clean_repository_on_main_with_one_commit_by_the_demo_author(demo: Path) -> None:
    assert git(demo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(demo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(demo, "rev-list", "--count", "HEAD") == "1"
    assert git(demo, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "orchestra demo <demo@orchestra.invalid>|orchestra demo <demo@orchestra.invalid>")
    tracked = set(git(demo, "ls-files").splitlines())
    assert {"calc/stats.py", "tests/test_stats.py", ".gitignore", "README.md", "orchestra.toml",
            "agents/fixer.py", "agents/overreach.py", "agents/tester.py", "agents/flaky.py"} <= tracked


def test_demo_tests_fail_on_the_bug_only_and_leave_the_repository_clean(demo: Path) -> None:
    done = run_pytest(demo)
    counts = parse_pytest(done.stdout.splitlines())
    assert done.returncode == 1, done.stdout + done.stderr
    assert counts.failures == [BUG_TEST]
    assert counts.failed == 1 and counts.passed and counts.passed >= 3
    assert git(demo, "status", "--porcelain", "--untracked-files=all") == ""


def test_demo_score_loads_with_two_specs_of_shell_agents(demo: Path) -> None:
    score = load_score(demo / "orchestra.toml")
    fix = score.spec("fix-mean")
    assert [s.id for s in score.specs] == ["fix-mean", "docs"]
    assert fix.agents == ("fixer", "overreach", "tester", "flaky")
    assert fix.allow == ("calc/**", "tests/**") and fix.deny
    assert [check.name for check in fix.verify] == ["pytest"]
    assert fix.verify[0].command.startswith(f"{sys.executable} -m pytest")
    assert score.spec("docs").agents == ("scribe",)
    assert {agent.kind for agent in score.agents} == {"shell"}
    assert all(agent.command and agent.command.startswith(sys.executable) for agent in score.agents)
    # This machine's Python runs them: their runs stay here, whatever hosts the conductor has.
    assert {agent.name for agent in score.agents if agent.host == "local"} == {*fix.agents, "scribe"}


def test_a_python_path_with_spaces_and_quotes_is_quoted_for_the_shell_and_toml(tmp_path: Path) -> None:
    python = '/opt/my "py"/bin/python'
    root = create_demo(tmp_path / "demo", python=python)
    command = load_score(root / "orchestra.toml").agent("fixer").command
    assert command == """'/opt/my "py"/bin/python' -B agents/fixer.py"""


def test_an_empty_directory_is_used_and_returned(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert create_demo(tmp_path / "empty") == (tmp_path / "empty").resolve()
    assert is_demo(tmp_path / "empty")


def test_a_non_empty_directory_or_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    with pytest.raises(OrchestraError, match="not an empty directory"):
        create_demo(busy)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OrchestraError, match="already exists"):
        create_demo(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_is_demo_tells_the_demo_from_other_repositories(demo: Path, repo: Path, tmp_path: Path) -> None:
    assert is_demo(demo)
    assert not is_demo(repo)
    assert not is_demo(tmp_path / "missing")


def test_the_notice_names_the_stand_ins_and_how_to_add_a_real_agent() -> None:
    lines = DEMO_NOTICE.splitlines()
    assert 2 <= len(lines) <= 3 and all(len(line) <= 77 for line in lines)  # the banner at 80 columns
    assert len(lines[0]) <= 77 - len("  x hides this")  # room for the key that hides it
    assert "no API key" in DEMO_NOTICE
    assert 'kind = "llm"' in DEMO_NOTICE and '"cli" (claude' in DEMO_NOTICE


# -- the whole demo through the core ----------------------------------------------------------

@pytest.fixture
def fleet(demo: Path) -> Iterator[Fleet]:
    repo = open_repository(demo)
    fleet = Fleet(repo, load_score(repo.score_path))
    try:
        yield fleet
    finally:  # supervisors are detached: decide every open run so none is left watching
        for run in fleet.runs():
            if run.has_worktree:
                fleet.reject(run.id, "test cleanup")


def settled(fleet: Fleet, run: Run) -> bool:
    """Whether a run has finished and, in review, every gate of its spec has a fresh result."""
    if run.is_active:
        return False
    if run.state != "review":
        return True
    assert fleet.score is not None and run.spec is not None
    expected = set(run.expected_gates())
    assert {"boundary", "secrets", "review-reviewer"} <= expected
    assert {check.name for check in fleet.score.spec(run.spec).verify} <= expected
    return expected <= set(run.gates) and all(
        gate.status not in ("pending", "running") and not gate.is_stale(run.tree)
        for gate in run.gates.values())


def wait_until_settled(fleet: Fleet) -> dict[str, Run]:
    """Poll the runs until all have settled; the runs by agent name."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        runs = fleet.runs()
        if all(settled(fleet, run) for run in runs):
            return {run.agent: run for run in runs}
        if time.monotonic() > deadline:
            pytest.fail("runs did not settle: " + "; ".join(
                f"{r.agent} {r.state} {[(g.name, g.status) for g in r.gates.values()]}" for r in runs))
        time.sleep(0.2)


def output_of(fleet: Fleet, run: Run) -> str:
    events, _ = fleet.store.read_events(run.id)
    return "\n".join(e.get("text", "") for e in events if e["type"] in ("output", "note"))


def statuses(run: Run) -> dict[str, str]:
    """Each gate's status, but the secret scan's (always passed here) and the reviewer's (see verdicts)."""
    return {name: gate.status for name, gate in run.gates.items() if name not in ("secrets", "review-reviewer")}


def verdict(run: Run) -> tuple[str | None, list[str]]:
    """The scripted reviewer's verdict and its findings' priorities and places."""
    gate = run.gates["review-reviewer"]
    return gate.verdict, [f"{f['priority']} {f['path']}" for f in gate.findings]


def test_the_demo_runs_through_the_fleet_and_redirects_bring_every_run_round(fleet: Fleet) -> None:
    started = time.monotonic()
    fleet.spawn("fix-mean")
    fleet.spawn("docs")
    runs = wait_until_settled(fleet)
    first_pass = time.monotonic() - started

    assert runs["fixer"].state == "review"
    assert statuses(runs["fixer"]) == {"boundary": "passed", "pytest": "passed"}
    assert runs["fixer"].changed_paths == ["calc/stats.py"]
    assert verdict(runs["fixer"]) == ("approved", ["P3 calc/stats.py"])
    assert all(run.gates["secrets"].status == "passed" for run in runs.values() if run.state == "review")

    overreach = runs["overreach"]
    assert overreach.state == "review"
    assert statuses(overreach) == {"boundary": "failed", "pytest": "passed"}
    assert overreach.gates["boundary"].failures == ["README.md (outside allow)"]
    assert verdict(overreach) == ("changes requested", ["P1 README.md", "P3 calc/stats.py"])

    tester = runs["tester"]
    assert tester.state == "review"
    assert statuses(tester) == {"boundary": "passed", "pytest": "failed"}
    assert tester.gates["pytest"].failures == [BUG_TEST]
    assert "tests/test_median.py" in tester.changed_paths
    assert verdict(tester) == ("changes requested", ["P1 tests/test_median.py"])

    assert runs["flaky"].state == "failed"
    assert "model API unreachable" in output_of(fleet, runs["flaky"])

    assert runs["scribe"].state == "review"
    assert statuses(runs["scribe"]) == {"boundary": "passed", "docs": "passed"}
    assert verdict(runs["scribe"]) == ("approved", [])

    fleet.redirect(tester.id, "Fix the bug in mean() too")
    fleet.redirect(overreach.id, "Stay inside calc/ and tests/")
    fleet.redirect(runs["flaky"].id, "The API is back: try again")
    runs = wait_until_settled(fleet)

    for name in ("tester", "overreach", "flaky"):
        assert runs[name].state == "review", (name, runs[name].message)
        assert statuses(runs[name]) == {"boundary": "passed", "pytest": "passed"}, name
        assert verdict(runs[name]) == ("approved", ["P3 calc/stats.py"]), name
    assert "README.md" not in runs["overreach"].changed_paths
    assert "Redirected: Fix the bug in mean() too" in output_of(fleet, runs["tester"])
    total = time.monotonic() - started
    print(f"demo through the fleet: first pass {first_pass:.1f}s, with redirects {total:.1f}s")
