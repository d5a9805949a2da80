"""The coverage gate: reports read safely, the changed lines' coverage, thresholds, the base's total kept;
and end to end through the fleet, with coverage.py itself in the run's sandbox."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.gates.commands import run_check
from orchestra.core.gates.coverage import (
    Coverage,
    ReportError,
    changed_coverage,
    parse_cobertura,
    parse_json,
    read_report,
)
from orchestra.core.gates.evidence import CheckContext, OtherTree, judge
from orchestra.core.git.export import export_tree
from orchestra.core.jail import probe
from orchestra.core.runs.run import Gate, Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

PY = sys.executable


# -- a candidate in a real repository, judged with a real "elsewhere" (git export + the command) -------------

def commit_all(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@dataclass
class Elsewhere:
    """run_elsewhere without a supervisor: the tree exported beside the repository, the command run there."""

    git_dir: Path
    scratch: Path
    calls: list[OtherTree] = field(default_factory=list)

    async def __call__(self, other: OtherTree) -> tuple[Gate, Any]:
        self.calls.append(other)
        directory = self.scratch / f"other-{len(self.calls)}"
        export_tree(self.git_dir, other.commit, directory, other.overlay, other.overlay_from)
        gate = await run_check(other.check["name"], other.check["command"], directory, other.commit,
                               self.scratch / f"other-{len(self.calls)}.log", 60, other.check.get("junit"))
        return gate, other.collect(directory) if other.collect else None


def context(root: Path, base: str, check: dict[str, Any], elsewhere: Elsewhere | None) -> CheckContext:
    """The context of judging check on root's HEAD (the candidate) against base."""
    candidate, tree = git(root, "rev-parse", "HEAD"), git(root, "rev-parse", "HEAD^{tree}")
    run = Run(id="r1", agent="coder", spec="work", task="t", branch="main", worktree=str(root), base=base,
              target="main", agent_config={}, spec_config={"verify": [check]}, candidate=candidate, tree=tree,
              merge_base=base)
    return CheckContext(run=run, check=check, tree=tree, worktree=root, git_dir=root / ".git", since=base,
                        run_elsewhere=elsewhere, cache_dir=root.parent / "gates")


async def verify(root: Path, base: str, check: dict[str, Any], elsewhere: Elsewhere | None = None) -> Gate:
    """Run check's command on the candidate (root) and judge it, as the verifier does."""
    ctx = context(root, base, check, elsewhere)
    gate = await run_check(check["name"], check["command"], root, ctx.tree, root.parent / "gates" / "c.log", 60,
                           check.get("junit"))
    return await judge(ctx, gate)


def json_report(files: dict[str, tuple[list[int], list[int]]]) -> str:
    """A coverage.py JSON report: path → (executed lines, missing lines)."""
    return json.dumps({"meta": {"format": 3}, "files": {
        name: {"executed_lines": hit, "missing_lines": missed, "excluded_lines": []}
        for name, (hit, missed) in files.items()}})


def report_command(files: dict[str, tuple[list[int], list[int]]], exit_code: int = 0) -> str:
    return f"printf '%s' '{json_report(files)}' > cov.json; exit {exit_code}"


@pytest.fixture
def changed(repo: Path) -> tuple[Path, str]:
    """repo with a candidate on HEAD: src/app.py grown to 10 lines (lines 3-10 added), and a README edit."""
    base = git(repo, "rev-parse", "HEAD")
    (repo / "src" / "app.py").write_text("def answer():\n    return 41\n" + "".join(f"x{i} = {i}\n" for i in range(8)))
    (repo / "README.md").write_text("# demo\nmore\n")
    commit_all(repo)
    return repo, base


# -- reading reports ---------------------------------------------------------------------------------------

def test_a_coverage_json_report_maps_absolute_and_relative_paths_to_the_repository(tmp_path: Path) -> None:
    report = json_report({"src/a.py": ([1, 2], [3]), f"{tmp_path}/src/b.py": ([1], []),
                          "/usr/lib/python3/site.py": ([1], [2])})
    coverage = parse_json(report.encode(), tmp_path)
    assert set(coverage.files) == {"src/a.py", "src/b.py", "/usr/lib/python3/site.py"}
    assert (coverage.covered, coverage.statements) == (4, 6)
    assert round(coverage.percent, 1) == 66.7


def test_changed_lines_coverage_counts_executable_changed_lines_and_lists_uncovered_ranges() -> None:
    coverage = Coverage({"src/a.py": (frozenset({1, 2, 5, 9}), frozenset({3, 4, 7, 10})),
                         "lib/b.py": (frozenset({1}), frozenset())})
    changed = {"src/a.py": {2, 3, 4, 6, 7, 8, 10, 11}, "README.md": {1}, "pkg/lib/b.py": {1}}
    result = changed_coverage(coverage, changed)
    # executable changed lines: a.py 2,3,4,7,10 and b.py 1 (found by its tail: the report ran in pkg/)
    assert (result.covered, result.executable) == (2, 6)
    # 3-4 are adjacent; 7 stands alone (9 is executable, so 7 and 10 are not one range)
    assert result.uncovered == ["src/a.py:3-4", "src/a.py:7", "src/a.py:10"]


def test_uncovered_lines_with_only_blank_lines_between_them_are_one_range() -> None:
    coverage = Coverage({"a.py": (frozenset({1}), frozenset({3, 6}))})
    assert changed_coverage(coverage, {"a.py": {3, 4, 5, 6}}).uncovered == ["a.py:3-6"]


def test_a_cobertura_report_is_read_relative_to_its_sources(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    xml = (f'<?xml version="1.0" ?>\n<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">'
           f'<coverage lines-valid="3" lines-covered="2"><sources><source>{tmp_path}/src</source></sources>'
           '<packages><package><classes><class filename="m.py"><lines><line number="1" hits="2"/>'
           '<line number="2" hits="0"/></lines></class><class filename="m.py"><lines><line number="2" hits="1"/>'
           '<line number="3" hits="0"/></lines></class></classes></package></packages></coverage>')
    coverage = parse_cobertura(xml.encode(), tmp_path)
    assert coverage.files == {"src/m.py": (frozenset({1, 2}), frozenset({3}))}


@pytest.mark.parametrize("xml", [
    '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><coverage>&b;</coverage>',
    '<!DOCTYPE coverage [<!ELEMENT coverage ANY>]><coverage/>',
])
def test_a_cobertura_report_with_entities_or_an_internal_dtd_is_refused(tmp_path: Path, xml: str) -> None:
    with pytest.raises(ReportError, match="entities or an internal DTD"):
        parse_cobertura(xml.encode(), tmp_path)


def test_reports_outside_the_tree_not_regular_or_stale_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (tmp_path / "secret.json").write_text("{}")
    (root / "link.json").symlink_to(tmp_path / "secret.json")
    os.mkfifo(root / "fifo.json")
    (root / "old.json").write_text("{}")
    os.utime(root / "old.json", (1000, 1000))
    for name, reason in (("missing.json", "was not written"), ("link.json", "leads outside the tree"),
                         ("fifo.json", "not a regular file"), ("old.json", "older than the command")):
        with pytest.raises(ReportError, match=reason):
            read_report(root, name, written_since=2000.0)


# -- judging -------------------------------------------------------------------------------------------------

async def test_changed_lines_under_the_minimum_fail_and_are_listed(changed: tuple[Path, str]) -> None:
    root, base = changed
    command = report_command({"src/app.py": ([1, 2, 3, 4, 5, 8, 9], [6, 7, 10])})
    gate = await verify(root, base, {"name": "cov", "command": command, "coverage": "cov.json",
                                     "min_changed_coverage": 80})
    assert (gate.kind, gate.status) == ("coverage", "failed")
    assert gate.summary == "total 70.0% · changed lines 62.5% (5/8) — changed lines under 80%"
    assert gate.failures == ["src/app.py:6-7 not covered", "src/app.py:10 not covered"]
    assert gate.details["changed"] == 62.5 and gate.details["total"] == 70.0
    assert (gate.details["changed_covered"], gate.details["changed_executable"]) == (5, 8)


async def test_enough_coverage_passes_and_the_total_minimum_is_checked(changed: tuple[Path, str]) -> None:
    root, base = changed
    command = report_command({"src/app.py": (list(range(1, 11)), []), "src/other.py": ([1], [2, 3, 4, 5])})
    check = {"name": "cov", "command": command, "coverage": "cov.json", "min_changed_coverage": 90}
    gate = await verify(root, base, check)
    assert (gate.status, gate.summary, gate.failures) == (
        "passed", "total 73.3% · changed lines 100.0% (8/8)", [])
    gate = await verify(root, base, {**check, "min_coverage": 80})
    assert gate.status == "failed" and gate.summary.endswith("— total under 80%")


async def test_no_changed_executable_lines_meet_the_changed_lines_minimum(changed: tuple[Path, str]) -> None:
    root, base = changed
    command = report_command({"src/other.py": ([1], [2])})
    gate = await verify(root, base, {"name": "cov", "command": command, "coverage": "cov.json",
                                     "min_changed_coverage": 100})
    assert (gate.status, gate.summary) == ("passed", "total 50.0% · no changed executable lines")


async def test_a_missing_or_malformed_report_fails_closed(changed: tuple[Path, str]) -> None:
    root, base = changed
    gate = await verify(root, base, {"name": "cov", "command": "true", "coverage": "cov.json"})
    assert (gate.status, gate.summary) == ("failed", "the coverage report cov.json was not written")
    gate = await verify(root, base, {"name": "cov", "command": "echo '{\"files\": 3}' > cov.json",
                                     "coverage": "cov.json"})
    assert gate.status == "failed" and "no \"files\" table" in gate.summary
    gate = await verify(root, base, {"name": "cov", "command": "echo 'not a report' > cov.json",
                                     "coverage": "cov.json"})
    assert gate.status == "failed" and "neither coverage.py JSON nor Cobertura XML" in gate.summary
    gate = await verify(root, base, {"name": "cov", "command": report_command({}), "coverage": "cov.json"})
    assert (gate.status, gate.summary) == ("failed", ("the coverage report cov.json measured no lines (is its "
                                                     "source set?)"))


async def test_a_failing_command_stays_failed_with_the_numbers_added(changed: tuple[Path, str]) -> None:
    root, base = changed
    command = report_command({"src/app.py": (list(range(1, 11)), [])}, exit_code=1)
    gate = await verify(root, base, {"name": "cov", "command": command, "coverage": "cov.json",
                                     "max_coverage_drop": 1}, Elsewhere(root / ".git", root.parent / "elsewhere"))
    assert (gate.status, gate.summary) == ("failed", "exit 1 · total 100.0% · changed lines 100.0% (8/8)")


async def test_a_drop_below_the_base_fails_and_the_base_is_measured_once(changed: tuple[Path, str]) -> None:
    root, base = changed
    # The same command on both trees: it reports 9/10 where src/app.py has 2 lines (the base), 5/10 otherwise.
    command = ("if [ $(wc -l < src/app.py) -eq 2 ]; then " + report_command({"src/app.py": (list(range(1, 10)),
               [10])}) + "; else " + report_command({"src/app.py": ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])}) + "; fi")
    elsewhere = Elsewhere(root / ".git", root.parent / "elsewhere")
    check = {"name": "cov", "command": command, "coverage": "cov.json", "max_coverage_drop": 2.5}
    gate = await verify(root, base, check, elsewhere)
    assert gate.status == "failed"
    assert gate.summary == ("total 50.0% · changed lines 37.5% (3/8) · base 90.0% — 40.0 points below the base "
                            "(at most 2.5)")
    assert gate.details["base"] == 90.0
    assert [(o.commit, o.label, o.overlay) for o in elsewhere.calls] == [(base, "base", ())]
    again = await verify(root, base, check, elsewhere)
    assert again.summary == gate.summary and len(elsewhere.calls) == 1  # kept for this base tree and command
    await verify(root, base, {**check, "command": command + " "}, elsewhere)
    assert len(elsewhere.calls) == 2  # another command: measured again


async def test_a_base_without_a_report_or_a_verifier_without_elsewhere_fails_closed(
        changed: tuple[Path, str]) -> None:
    root, base = changed
    command = "[ $(wc -l < src/app.py) -eq 2 ] || " + report_command({"src/app.py": ([1], [])})
    check = {"name": "cov", "command": command, "coverage": "cov.json", "max_coverage_drop": 1}
    gate = await verify(root, base, check, Elsewhere(root / ".git", root.parent / "elsewhere"))
    assert gate.status == "failed"
    assert "the merge base's coverage is unknown: its report cov.json was not written (exit 0 there)" in gate.summary
    gate = await verify(root, base, check, None)
    assert gate.status == "failed" and "checks cannot run on another tree here" in gate.summary


# -- end to end: coverage.py in the sandbox ------------------------------------------------------------------

COVERAGE_COMMAND = (f"{PY} -m coverage run --source=src -m pytest -q -p no:cacheprovider tests && "
                    f"{PY} -m coverage json -q -o coverage.json")


def python_project(repo: Path) -> str:
    """A tested function in src/calc.py; reports and coverage data are ignored. Returns the base commit."""
    (repo / ".gitignore").write_text(".coverage\ncoverage.json\n")
    (repo / "src" / "calc.py").write_text("def double(x):\n    return 2 * x\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_calc.py").write_text("from calc import double\n\n\ndef test_double():\n"
                                                 "    assert double(2) == 4\n")
    return commit_all(repo, "calc")


@pytest.mark.skipif(not probe().works, reason="needs bubblewrap: ./dev test installs it")
def test_coverage_py_in_the_sandbox_fails_untested_new_lines(repo: Path, make_fleet: MakeFleet) -> None:
    python_project(repo)
    agent = ("printf 'def double(x):\\n    return 2 * x\\n\\n\\ndef half(x):\\n    if x < 0:\\n"
             "        raise ValueError(x)\\n    return x / 2\\n' > src/calc.py")
    fleet = make_fleet(repo, score_text({"coder": agent}, [{"id": "work", "intent": "add half", "verify": [
        {"name": "cov", "command": COVERAGE_COMMAND, "coverage": "coverage.json", "min_changed_coverage": 75,
         "max_coverage_drop": 20}]}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=90)
    gate = run.gates["cov"]
    assert run.sandbox["sandboxed"] is True
    assert (gate.kind, gate.status, gate.tree) == ("coverage", "failed", run.tree)
    # half's def line runs at import, its body (lines 6-8) never; src/app.py (2 lines) is never imported.
    # The base (double tested, app.py not): 2 of 4 lines, measured in the sandbox on the base's own tree.
    assert gate.summary == ("total 37.5% · changed lines 25.0% (1/4) · base 50.0% — changed lines under 75%"), \
        gate.summary
    assert gate.failures == ["src/calc.py:6-8 not covered"]
    gates_dir = fleet.store.run_dir(run.id) / "gates"
    assert "1 passed" in (gates_dir / "base" / "cov.log").read_text()
    assert json.loads((gates_dir / "base" / "cov.coverage.json").read_text())["result"]["total"] == 50.0
    assert list((fleet.repo.jails_dir / run.id / "trees").iterdir()) == []  # the base's tree is gone
