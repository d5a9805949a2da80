"""The SARIF gate: a real ruff report on a real candidate, judged on the lines the candidate changed;
reports that are missing or broken fail closed; every common way of naming a file; priorities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from orchestra.core.gates.evidence import CheckContext
from orchestra.core.gates.sarif import MAX_FINDINGS, judge_sarif
from orchestra.core.policy import readiness
from orchestra.core.runs.run import Gate, Run
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

RUFF = str(Path(sys.executable).parent / "ruff")
LEGACY = "import sys\n\n\ndef legacy():\n    return missing_name\n"  # F401 on line 1, F821 on line 5
BAD = "import os\n\n\ndef broken():\n    return undefined_name\n"


def commit(root: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def context(root: Path, since: str, candidate: str, report: str = "r.sarif") -> CheckContext:
    run = Run(id="r1", agent="coder", spec="work", task="t", branch="main", worktree=str(root), base=since,
              target="main", agent_config={}, spec_config=None, candidate=candidate)
    tree = git(root, "rev-parse", f"{candidate}^{{tree}}")
    check = {"name": "lint", "command": "ruff", "sarif": report}
    return CheckContext(run=run, check=check, tree=tree, worktree=root, git_dir=root / ".git", since=since)


def command_gate(exit_code: int = 1, started: float | None = None) -> Gate:
    """The gate run_check leaves for a command that has just run."""
    return Gate(name="lint", status="passed" if exit_code == 0 else "failed", exit_code=exit_code,
                summary=f"exit {exit_code}", started=time.time() - 1 if started is None else started)


def run_ruff(root: Path) -> int:
    done = subprocess.run([RUFF, "check", "--isolated", "--no-cache", "--select", "F", "--output-format", "sarif",
                           "-o", "r.sarif", "."], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode


@pytest.fixture
def legacy(repo: Path) -> tuple[Path, str]:
    """A repository whose main already holds code ruff flags (legacy.py); returns (root, base)."""
    return repo, commit(repo, {"legacy.py": LEGACY}, "legacy code")


# --- a real producer ----------------------------------------------------------------------------


async def test_errors_ruff_finds_in_the_lines_a_candidate_adds_fail_the_gate(legacy: tuple[Path, str]) -> None:
    root, base = legacy
    candidate = commit(root, {"src/bad.py": BAD}, "candidate")
    gate = command_gate(run_ruff(root))

    judged = await judge_sarif(context(root, base, candidate), gate)

    assert (judged.kind, judged.status) == ("sarif", "failed")
    places = sorted((f["rule"], f["path"], f["line_start"], f["priority"], f["level"], f["source"])
                    for f in judged.findings)
    assert places == [("F401", "src/bad.py", 1, "P1", "error", "sarif:lint"),
                      ("F821", "src/bad.py", 5, "P1", "error", "sarif:lint")]
    titles = {f["rule"]: f["title"] for f in judged.findings}
    assert titles == {"F401": "`os` imported but unused", "F821": "Undefined name `undefined_name`"}
    assert judged.details == {"tool": "ruff", "report": "r.sarif", "results": 4, "in_changed_lines": 2,
                              "errors_in_changed_lines": 2, "blocking_in_changed_lines": 2, "suppressed": 0,
                              "findings_not_kept": 0}
    assert judged.summary == "2 errors in changed lines (2 of 4 results in changed lines)"
    assert judged.failures == ["src/bad.py:1 F401", "src/bad.py:5 F821"]


async def test_the_same_problems_only_in_unchanged_lines_pass_and_are_counted(legacy: tuple[Path, str]) -> None:
    root, base = legacy
    # The candidate edits legacy.py, but not the lines ruff flags, and adds clean code.
    touched = LEGACY.replace("def legacy():\n", "def legacy():\n    \"\"\"Old.\"\"\"\n")
    candidate = commit(root, {"legacy.py": touched, "src/good.py": "def fine():\n    return 1\n"}, "candidate")
    gate = command_gate(run_ruff(root))
    assert gate.exit_code == 1  # ruff found something: the exit status alone would fail the gate

    judged = await judge_sarif(context(root, base, candidate), gate)

    assert judged.status == "passed" and judged.findings == []
    assert (judged.details["results"], judged.details["in_changed_lines"]) == (2, 0)
    assert judged.summary == "no errors in changed lines (0 of 2 results in changed lines)"


# --- reports that cannot be judged fail closed --------------------------------------------------


@pytest.fixture
def changed(repo: Path) -> tuple[Path, str, str]:
    """(root, base, candidate): the candidate adds src/new.py, three lines."""
    base = git(repo, "rev-parse", "HEAD")
    return repo, base, commit(repo, {"src/new.py": "a = 1\nb = 2\nc = 3\n"}, "candidate")


@pytest.mark.parametrize(("content", "why"), [
    ('{"version": "2.1.0", "runs": [', "r.sarif is not valid JSON"),
    ("", "r.sarif is not valid JSON"),
    ('{"foo": 1}', "r.sarif is not a SARIF report (no list of runs)"),
    ("[1, 2]", "r.sarif is not a SARIF report (no list of runs)"),
    ('{"version": "1.0.0", "runs": []}', "r.sarif is SARIF 1.0.0, not 2.1.0"),
    ('{"version": "2.1.0", "runs": [3]}', "r.sarif: run 0 is not an object"),
    ('{"version": "2.1.0", "runs": [{"results": {"a": 1}}]}', "r.sarif: the results of run 0 are not a list"),
    (json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [],
                                               "invocations": [{"executionSuccessful": False}]}]}),
     "r.sarif: t says it did not run successfully"),
])
async def test_a_report_that_is_not_sarif_fails_closed(changed: tuple[Path, str, str], content: str,
                                                       why: str) -> None:
    root, base, candidate = changed
    gate = command_gate(0)
    (root / "r.sarif").write_text(content)
    judged = await judge_sarif(context(root, base, candidate), gate)
    assert judged.status == "failed" and judged.kind == "sarif"
    assert judged.summary.startswith(why) and judged.summary.endswith(": the gate fails closed")
    assert "\n" not in judged.summary


async def test_a_missing_report_fails_closed_with_the_exit_status(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    ctx = context(root, base, candidate)
    assert (await judge_sarif(ctx, command_gate(0))).summary == "no SARIF report at r.sarif: the gate fails closed"
    judged = await judge_sarif(ctx, command_gate(2))
    assert (judged.status, judged.summary) == ("failed", "exit 2 and no SARIF report at r.sarif: the gate fails closed")


async def test_a_report_older_than_the_command_was_not_written_by_it(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    (root / "r.sarif").write_text(json.dumps(report([])))  # e.g. committed by the agent, all clean
    hour_ago = time.time() - 3600
    os.utime(root / "r.sarif", (hour_ago, hour_ago))
    judged = await judge_sarif(context(root, base, candidate), command_gate(0))
    assert judged.status == "failed"
    assert judged.summary == ("the SARIF report r.sarif is older than the command: this run of it did not write it: "
                              "the gate fails closed")


async def test_a_report_that_leads_outside_the_worktree_or_is_not_a_file_fails_closed(
        changed: tuple[Path, str, str], tmp_path: Path) -> None:
    root, base, candidate = changed
    outside = tmp_path / "elsewhere.sarif"
    outside.write_text(json.dumps(report([])))
    (root / "r.sarif").symlink_to(outside)
    judged = await judge_sarif(context(root, base, candidate), command_gate(0))
    assert judged.summary == "the SARIF report r.sarif leads outside the tree (a link): the gate fails closed"
    (root / "out").mkdir()
    judged = await judge_sarif(context(root, base, candidate, "out"), command_gate(0))
    assert judged.summary == "the SARIF report out is not a regular file: the gate fails closed"


async def test_a_command_that_timed_out_fails_whatever_its_report_says(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    (root / "r.sarif").write_text(json.dumps(report([])))
    gate = command_gate(-9)
    gate.summary = "timed out after 5s"
    judged = await judge_sarif(context(root, base, candidate), gate)
    assert (judged.status, judged.summary) == (
        "failed", "timed out after 5s; the report was not read: the gate fails closed")


# --- how a report names files -------------------------------------------------------------------


def report(results: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None, **run: Any) -> dict[str, Any]:
    return {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "handmade", "rules": rules or []}},
                                          "results": results, **run}]}


def result(uri: str | None, line: int | None = 2, level: str | None = "error", **extra: Any) -> dict[str, Any]:
    location: dict[str, Any] = {"uri": uri} if uri is not None else {}
    location.update(extra.pop("location", {}))
    region = {"startLine": line} if line is not None else {}
    found = {"ruleId": extra.pop("ruleId", "R1"), "message": extra.pop("message", {"text": "a problem"}),
             "locations": [{"physicalLocation": {"artifactLocation": location, "region": region}}], **extra}
    if level is not None:
        found["level"] = level
    return found


async def judge_report(root: Path, base: str, candidate: str, data: dict[str, Any]) -> Gate:
    (root / "r.sarif").write_text(json.dumps(data))
    return await judge_sarif(context(root, base, candidate), command_gate(1))


async def test_every_way_of_naming_a_file_reaches_the_same_path(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    name = "src/naïve-100%.py"  # percent-encoded as na%C3%AFve-100%25.py
    candidate = commit(repo, {name: "a = 1\nb = 2\n"}, "a file whose name needs encoding")
    encoded = "src/na%C3%AFve-100%25.py"
    results = [
        result(f"file://{quote(str(repo))}/{encoded}"),                       # a file:// URI
        result(f"file://localhost{quote(str(repo))}/{encoded}"),              # with a host
        result(f"{repo}/{name}"),                                             # a plain absolute path
        result(encoded),                                                      # relative to the worktree
        result("./src/../" + encoded),                                        # not normalised
        result(encoded.removeprefix("src/"), location={"uriBaseId": "SRC"}),  # a defined base id, chained
        result(encoded, location={"uriBaseId": "%SRCROOT%"}),                 # an undefined one: the root
        result(None, location={"index": 0}),                                  # through the run's artifacts
        result(f"file://{quote(os.path.realpath(repo))}/{encoded}"),          # the worktree's real path
    ]
    bases = {"SRC": {"uri": "src/", "uriBaseId": "ROOT"}, "ROOT": {"uri": f"file://{quote(str(repo))}/"}}
    artifacts = [{"location": {"uri": encoded, "uriBaseId": "%SRCROOT%"}}]
    judged = await judge_report(repo, base, candidate, report(results, originalUriBaseIds=bases, artifacts=artifacts))
    assert [f["path"] for f in judged.findings] == [name] * len(results)
    assert judged.details["in_changed_lines"] == len(results)


async def test_results_elsewhere_are_counted_not_kept(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    results = [
        result("src/new.py", line=9),                    # past the lines the candidate added
        result("README.md", line=1),                     # a file the candidate did not change
        result("/somewhere/else/src/new.py"),            # outside the worktree
        result("https://example.invalid/src/new.py"),    # not a file
        result(None),                                    # no location at all
        result("src/new.py", line=1, ruleId="KEPT"),
        result("src/new.py", line=None, ruleId="FILE"),  # the whole file, which the candidate changed
        span(result("src/new.py", line=3, ruleId="SPAN"), 10**9),  # a huge span from a changed line
        span(result("src/new.py", line=4), 10**9),                  # and one after the changed lines
    ]
    judged = await judge_report(root, base, candidate, report(results))
    assert sorted(f["rule"] for f in judged.findings) == ["FILE", "KEPT", "SPAN"]
    assert (judged.details["results"], judged.details["in_changed_lines"]) == (9, 3)


def span(found: dict[str, Any], end: int) -> dict[str, Any]:
    found["locations"][0]["physicalLocation"]["region"]["endLine"] = end
    return found


async def test_suppressed_passing_and_inapplicable_results_are_not_problems(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    results = [result("src/new.py", suppressions=[{"kind": "inSource"}]),
               result("src/new.py", kind="pass", level=None),
               result("src/new.py", kind="notApplicable", level=None),
               result("src/new.py", suppressions=[{"kind": "external", "status": "rejected"}], ruleId="KEPT")]
    judged = await judge_report(root, base, candidate, report(results))
    assert [f["rule"] for f in judged.findings] == ["KEPT"] and judged.details["suppressed"] == 3


# --- priorities and messages --------------------------------------------------------------------


@pytest.mark.parametrize(("level", "rule_level", "severity", "priority"), [
    ("error", None, None, "P1"),
    ("warning", None, None, "P2"),
    ("note", None, None, "P3"),
    ("none", None, None, "P3"),
    (None, "error", None, "P1"),       # the rule's default configuration
    (None, "note", None, "P3"),
    (None, None, None, "P2"),          # SARIF's default level is warning
    ("warning", None, "9.1", "P0"),    # GitHub's critical
    ("note", None, "9.0", "P0"),
    ("note", None, "7.5", "P1"),       # high: at least P1
    ("error", None, "8", "P1"),
    ("warning", None, 6.9, "P2"),      # medium: the level decides
    ("warning", None, "not a number", "P2"),
])
async def test_priority_comes_from_the_level_and_the_security_severity(
        changed: tuple[Path, str, str], level: str | None, rule_level: str | None, severity: Any,
        priority: str) -> None:
    root, base, candidate = changed
    rule: dict[str, Any] = {"id": "R1"}
    if rule_level:
        rule["defaultConfiguration"] = {"level": rule_level}
    extra = {"properties": {"security-severity": severity}} if severity is not None else {}
    judged = await judge_report(root, base, candidate, report([result("src/new.py", level=level, **extra)], [rule]))
    [finding] = judged.findings
    assert finding["priority"] == priority
    assert judged.status == ("failed" if priority in ("P0", "P1") else "passed")


async def test_a_rule_s_security_severity_applies_to_its_results(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    rules = [{"id": "sql-injection", "properties": {"security-severity": "9.8"}}]
    judged = await judge_report(root, base, candidate, report(
        [result("src/new.py", level="warning", ruleId=None, ruleIndex=0)], rules))
    assert [(f["rule"], f["priority"], f["level"]) for f in judged.findings] == [("sql-injection", "P0", "warning")]
    assert judged.status == "failed" and judged.details["errors_in_changed_lines"] == 0


async def test_titles_and_bodies_come_from_the_message_and_the_rule(changed: tuple[Path, str, str]) -> None:
    root, base, candidate = changed
    rules = [{"id": "R1", "messageStrings": {"default": {"text": "{0} is tainted by {1}"}},
              "help": {"text": "Sanitise inputs."}, "helpUri": "https://example.invalid/R1"},
             {"id": "R2", "fullDescription": {"text": "long " * 500}}]
    results = [result("src/new.py", ruleId="R1", message={"id": "default", "arguments": ["x", "input()"]}),
               result("src/new.py", line=1, ruleId="R2", message={"text": "First line\n\x1b[31mmore\x1b[0m detail"}),
               result("src/new.py", line=3, ruleId="R2", message={"text": "y" * 300})]
    judged = await judge_report(root, base, candidate, report(results, rules))
    found = {f["line_start"]: f for f in judged.findings}
    assert (found[2]["title"], found[2]["body"]) == ("x is tainted by input()",
                                                     "Sanitise inputs.\n\nhttps://example.invalid/R1")
    assert (found[1]["title"], found[1]["body"]) == ("First line", "more detail")
    assert len(found[3]["title"]) == 200 and found[3]["title"].endswith("…")


async def test_a_flood_of_results_keeps_the_highest_priorities_and_counts_the_rest(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    candidate = commit(repo, {"gen.py": "x = 1\n" * 3000}, "generated")
    results = [result("gen.py", line=n % 3000 + 1, level="note" if n else "error") for n in range(20_000)]
    judged = await judge_report(repo, base, candidate, report(results))
    assert len(judged.findings) == MAX_FINDINGS and judged.findings[0]["priority"] == "P1"
    assert judged.details["findings_not_kept"] == 20_000 - MAX_FINDINGS
    assert judged.summary == "1 error in changed lines (20000 of 20000 results in changed lines)"


# --- through the fleet --------------------------------------------------------------------------


def test_a_sarif_check_of_a_run_holds_the_findings_in_its_changes_and_keeps_it_from_ready(
        repo: Path, make_fleet: MakeFleet) -> None:
    commit(repo, {"legacy.py": LEGACY}, "legacy code")  # old problems: counted, never findings
    agent = "mkdir -p src && printf 'import os\\n\\n\\ndef broken():\\n    return undefined_name\\n' > src/bad.py"
    lint = f"{RUFF} check --isolated --no-cache --select F --output-format sarif -o r.sarif ."
    fleet = make_fleet(repo, score_text({"coder": agent}, [
        {"id": "work", "intent": "Add a helper", "verify": [{"name": "lint", "command": lint, "sarif": "r.sarif"}]}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id, timeout=60)

    assert run.state == "review", run.message
    gate = run.gates["lint"]
    assert (gate.kind, gate.status, gate.exit_code) == ("sarif", "failed", 1), gate.summary
    assert sorted((f["rule"], f["path"], f["line_start"]) for f in gate.findings) == [
        ("F401", "src/bad.py", 1), ("F821", "src/bad.py", 5)]
    assert gate.details["results"] == 4 and gate.details["in_changed_lines"] == 2
    assert run.gates["secrets"].status == "passed"
    ready = readiness(run)
    assert not ready.ready
    assert any(reason.startswith("gate lint failed: 2 errors in changed lines") for reason in ready.reasons)
