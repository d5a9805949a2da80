"""The SARIF gate: a check whose command writes a SARIF 2.1.0 report is judged on the report, not its exit.

Linters exit non-zero when they find anything at all; what matters for a candidate is what it adds. So
every result becomes a finding (priority from its level: error P1, warning P2, note P3; a
`security-severity` of 9.0 or more, as GitHub code scanning reads it, makes it P0, of 7.0 or more at
least P1), only results in lines the candidate adds or changes are kept, and the gate fails when one of
those is an error (P0 or P1). The rest are counted in the gate's details, so a legacy codebase's old
warnings do not flood the review. A result with a file but no line counts when the candidate changed the
file; one with no file at all is counted, never kept.

The report is read with plain `json`: SARIF is JSON, and a reader library would pull in far more than
the few fields read here. A report that is missing, older than the command, outside the worktree, too
large, not JSON or not SARIF fails the gate (it fails closed), with one line saying what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

from orchestra.core.base.findings import PRIORITIES, Finding, by_priority
from orchestra.core.base.output import strip_escapes
from orchestra.core.gates.evidence import CheckContext
from orchestra.core.gates.reports import ReportError
from orchestra.core.gates.reports import read_report as read_bytes
from orchestra.core.runs.run import Gate

MAX_REPORT_BYTES = 100 * 1024 * 1024
MAX_FINDINGS = 500  # kept on the gate, highest priority first; the rest are counted
MAX_TITLE, MAX_BODY, MAX_HELP = 200, 2000, 600
LEVELS = ("error", "warning", "note", "none")
_BLOCKING = ("P0", "P1")  # what fails the gate: an error, or a high security severity
_PRIORITY_OF_LEVEL = {"error": "P1", "warning": "P2", "note": "P3", "none": "P3"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ARGUMENT = re.compile(r"\{(\d+)\}")


class ReportProblem(Exception):
    """The report cannot be judged; the message says why, in a few words."""


async def judge_sarif(ctx: CheckContext, gate: Gate) -> Gate:
    """The check's gate judged on its SARIF report's results in the candidate's changed lines."""
    return await asyncio.to_thread(judge_report, ctx, gate)


def judge_report(ctx: CheckContext, gate: Gate) -> Gate:
    """judge_sarif's work (blocking: reads the report and runs git for the changed lines)."""
    relative = str(ctx.check["sarif"])
    gate = replace(gate, kind="sarif")
    if gate.summary.startswith("timed out"):
        return _closed(gate, f"{gate.summary}; the report was not read")
    try:
        report = read_report(ctx.worktree, relative, gate.started)
    except ReportProblem as problem:
        return _closed(gate, str(problem))
    except FileNotFoundError:
        exited = f"exit {gate.exit_code} and " if gate.exit_code else ""
        return _closed(gate, f"{exited}no SARIF report at {relative}")
    except OSError as error:
        return _closed(gate, f"could not read {relative} ({_one_line(error.strerror or str(error))})")
    try:
        return _judged(gate, report, ctx)
    except ReportProblem as problem:
        return _closed(gate, f"{relative}: {problem}")


def _closed(gate: Gate, why: str) -> Gate:
    return replace(gate, status="failed", summary=f"{why}: the gate fails closed")


def read_report(worktree: Path, relative: str, written_after: float | None) -> dict[str, Any]:
    """The report at worktree/relative as SARIF JSON (read as reports.read_report reads every report);
    FileNotFoundError when absent, ReportProblem when unusable."""
    try:
        data = read_bytes(worktree, relative, written_after, MAX_REPORT_BYTES)
    except ReportError as error:
        if str(error) == "was not written":
            raise FileNotFoundError(relative) from None
        raise ReportProblem(f"the SARIF report {relative} {error}") from None
    try:
        report = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ReportProblem(f"{relative} is not valid JSON ({_one_line(str(error) or type(error).__name__)})")
    if not isinstance(report, dict) or not isinstance(report.get("runs"), list):
        raise ReportProblem(f"{relative} is not a SARIF report (no list of runs)")
    if report.get("version", "2.1.0") != "2.1.0":
        raise ReportProblem(f"{relative} is SARIF {_one_line(str(report['version']))[:20]}, not 2.1.0")
    return report


def _judged(gate: Gate, report: dict[str, Any], ctx: CheckContext) -> Gate:
    """The gate from the report's results: findings in changed lines kept, the others counted."""
    changed, places = ctx.changed_lines(), _Places(ctx.worktree)
    hits: list[_Hit] = []
    total = suppressed = 0
    tools: list[str] = []
    for index, run in enumerate(report["runs"]):
        if not isinstance(run, dict):
            raise ReportProblem(f"run {index} is not an object")
        reader = _RunReader(run, places)
        if reader.failed():
            raise ReportProblem(f"{reader.tool or 'the tool'} says it did not run successfully")
        if reader.tool and reader.tool not in tools:
            tools.append(reader.tool)
        for result in reader.results(index):
            if reader.is_quiet(result):
                suppressed += 1
                continue
            total += 1
            place = reader.located(result)
            if _touches(changed, *place):
                hits.append(reader.hit(result, *place))
    return _verdict(gate, hits, total, suppressed, tools, str(ctx.check["sarif"]))


def _verdict(gate: Gate, hits: list[_Hit], total: int, suppressed: int, tools: list[str],
             relative: str) -> Gate:
    """The gate's status, summary and details; findings only for the MAX_FINDINGS highest priority hits."""
    hits.sort(key=lambda hit: (PRIORITIES.index(hit.priority), hit.path or "", hit.start or 0))
    kept = by_priority(hit.finding(f"sarif:{gate.name}") for hit in hits[:MAX_FINDINGS])
    blocking = sum(hit.priority in _BLOCKING for hit in hits)
    shown = f"{len(hits)} of {total} result{'s' if total != 1 else ''} in changed lines"
    errors = f"{blocking} error{'s' if blocking != 1 else ''}" if blocking else "no errors"
    details = {"tool": ", ".join(tools), "report": relative, "results": total, "in_changed_lines": len(hits),
               "errors_in_changed_lines": sum(hit.level == "error" for hit in hits),
               "blocking_in_changed_lines": blocking, "suppressed": suppressed,
               "findings_not_kept": len(hits) - len(kept)}
    failures = [f"{f.place} {f.rule or f.title}" for f in kept if f.priority in _BLOCKING][:20]
    return replace(gate, status="failed" if blocking else "passed", findings=[f.to_json() for f in kept],
                   summary=f"{errors} in changed lines ({shown})", details=details, passed=None,
                   failed=blocking, failures=failures)


def _touches(changed: dict[str, set[int]], path: str | None, start: int | None, end: int | None) -> bool:
    """Whether a result at path:start-end lies in lines the candidate changed (no line: the file changed)."""
    lines = changed.get(path or "")
    if not lines:
        return False
    if start is None:
        return True
    end = max(start, end or start)
    if end - start < len(lines):
        return any(n in lines for n in range(start, end + 1))
    return any(start <= n <= end for n in lines)


class _Places:
    """Where a SARIF artifact location points, as a path relative to the worktree (cached per location)."""

    def __init__(self, worktree: Path) -> None:
        roots = {os.path.normpath(str(worktree)), os.path.normpath(str(worktree.resolve()))}
        self.roots = sorted(roots, key=len, reverse=True)
        self.cache: dict[tuple[str, str | None, int], str | None] = {}

    def path(self, uri: str, base_id: str | None, bases: dict[str, Any]) -> str | None:
        key = (uri, base_id, id(bases))
        if key not in self.cache:
            self.cache[key] = self._relative(_resolved(uri, base_id, bases, 0))
        return self.cache[key]

    def _relative(self, uri: str) -> str | None:
        parts = urlsplit(uri)
        if parts.scheme == "file" or len(parts.scheme) <= 1:  # a one-letter scheme: a Windows drive
            text = unquote(parts.path if parts.scheme == "file" else uri)
        else:
            return None  # http: and the like name no file here
        if not text.startswith("/"):
            text = posixpath.normpath(text)
            return None if text in (".", "") else text
        text = posixpath.normpath(text)
        for root in self.roots:
            if text.startswith(root.rstrip("/") + "/"):
                return text[len(root.rstrip("/")) + 1:]
        return text  # outside the worktree: never a changed line


def _resolved(uri: str, base_id: str | None, bases: dict[str, Any], depth: int) -> str:
    """uri made absolute through its uriBaseId (run.originalUriBaseIds); an unknown base is the worktree."""
    base = bases.get(base_id) if base_id else None
    if not isinstance(base, dict) or not isinstance(base.get("uri"), str) or depth > 8:
        return uri
    prefix = _resolved(base["uri"], _text(base.get("uriBaseId")), bases, depth + 1)
    return urljoin(prefix if prefix.endswith("/") else prefix + "/", uri)


class _Hit(NamedTuple):
    """A result in changed lines, ranked before its message is read (only the kept ones are)."""

    priority: str
    level: str
    path: str | None
    start: int | None
    end: int | None
    rule_id: str | None
    rule: dict[str, Any]
    result: dict[str, Any]

    def finding(self, source: str) -> Finding:
        first, rest = _message(self.result, self.rule, self.rule_id)
        return Finding(title=first, priority=self.priority, source=source, body=_body(rest, self.rule),
                       path=self.path, line_start=self.start, line_end=self.end, rule=self.rule_id,
                       level=self.level)


class _RunReader:
    """One SARIF run: its tool, rules and artifacts, and what each of its results says."""

    def __init__(self, run: dict[str, Any], places: _Places) -> None:
        tool = _obj(run.get("tool"))
        driver = _obj(tool.get("driver"))
        self.tool = _text(driver.get("name")) or ""
        self.rules = _objects(driver.get("rules"))
        self.extensions = [_objects(_obj(ext).get("rules")) for ext in _list(tool.get("extensions"))]
        self.by_id: dict[str, dict[str, Any]] = {}
        for rules in (*reversed(self.extensions), self.rules):  # the driver's own win
            self.by_id.update((rule["id"], rule) for rule in rules if isinstance(rule.get("id"), str))
        self.artifacts = [_obj(_obj(a).get("location")) for a in _list(run.get("artifacts"))]
        self.bases = _obj(run.get("originalUriBaseIds"))
        self.run, self.places = run, places

    def failed(self) -> bool:
        """Whether an invocation of the tool says it did not complete (its results may be partial)."""
        return any(i.get("executionSuccessful") is False for i in _objects(self.run.get("invocations")))

    def results(self, index: int) -> list[dict[str, Any]]:
        results = self.run.get("results")
        if results is None:
            return []
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ReportProblem(f"the results of run {index} are not a list of objects")
        return results

    @staticmethod
    def is_quiet(result: dict[str, Any]) -> bool:
        """Whether a result is not a problem: a pass, not applicable, or suppressed (and not rejected)."""
        if result.get("kind") in ("pass", "notApplicable"):
            return True
        suppressions = _objects(result.get("suppressions"))
        return bool(suppressions) and all(s.get("status", "accepted") == "accepted" for s in suppressions)

    def located(self, result: dict[str, Any]) -> tuple[str | None, int | None, int | None]:
        """(path relative to the worktree, first line, last line) of a result's first location."""
        try:
            physical = result["locations"][0]["physicalLocation"]
            artifact = _obj(physical.get("artifactLocation"))
        except (KeyError, IndexError, TypeError, AttributeError):
            return None, None, None
        index = artifact.get("index")
        if not isinstance(artifact.get("uri"), str) and isinstance(index, int) and 0 <= index < len(self.artifacts):
            artifact = self.artifacts[index]
        uri = artifact.get("uri")
        if not isinstance(uri, str) or not uri:
            return None, None, None
        region = _obj(physical.get("region"))
        start = _line(region.get("startLine"))
        end = _line(region.get("endLine")) if start is not None else None
        return self.places.path(uri, _text(artifact.get("uriBaseId")), self.bases), start, end or start

    def rule_of(self, result: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        """The result's rule id and the rule's description (empty when the run does not describe it)."""
        reference = _obj(result.get("rule"))
        rule_id = _text(result.get("ruleId")) or _text(reference.get("id"))
        index = result.get("ruleIndex", reference.get("index"))
        component = _obj(reference.get("toolComponent")).get("index")
        rules = self.rules
        if isinstance(component, int) and 0 <= component < len(self.extensions):
            rules = self.extensions[component]
        if isinstance(index, int) and 0 <= index < len(rules):
            rule = rules[index]
        else:
            rule = self.by_id.get(rule_id or "", {})
        return rule_id or _text(rule.get("id")), rule

    def hit(self, result: dict[str, Any], path: str | None, start: int | None, end: int | None) -> _Hit:
        rule_id, rule = self.rule_of(result)
        level = _level(result, rule)
        severity = _severity(_obj(result.get("properties"))) or _severity(_obj(rule.get("properties")))
        return _Hit(_priority(level, severity), level, path, start, end, rule_id, rule, result)


def _level(result: dict[str, Any], rule: dict[str, Any]) -> str:
    """The result's level; else none for a result that is not a failure; else the rule's default; else warning."""
    if result.get("level") in LEVELS:
        return result["level"]
    if isinstance(result.get("kind"), str) and result["kind"] != "fail":
        return "none"
    default = _obj(rule.get("defaultConfiguration")).get("level")
    return default if default in LEVELS else "warning"


def _severity(properties: dict[str, Any]) -> float | None:
    value = properties.get("security-severity")
    try:
        return float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except ValueError:
        return None


def _priority(level: str, severity: float | None) -> str:
    """error P1, warning P2, note and none P3; security-severity >= 9.0 P0, >= 7.0 at least P1."""
    priority = _PRIORITY_OF_LEVEL[level]
    if severity is not None and severity >= 9.0:
        return "P0"
    if severity is not None and severity >= 7.0:
        return min(priority, "P1", key=PRIORITIES.index)
    return priority


def _message(result: dict[str, Any], rule: dict[str, Any], rule_id: str | None) -> tuple[str, str]:
    """(title, the rest) of the result's message: its text, else the rule's message string, else its name."""
    message = _obj(result.get("message"))
    text = _text(message.get("text")) or _text(message.get("markdown"))
    if not text and _text(message.get("id")):
        text = _text(_obj(_obj(rule.get("messageStrings")).get(message["id"])).get("text"))
    arguments = [str(a) for a in _list(message.get("arguments"))]
    if text and arguments:
        text = _ARGUMENT.sub(lambda m: arguments[int(m[1])] if int(m[1]) < len(arguments) else m[0], text)
    text = _clean(text or _text(_obj(rule.get("shortDescription")).get("text")) or rule_id or "(no message)")
    first, _, rest = text.strip().partition("\n")
    first = first.strip() or rule_id or "(no message)"
    if len(first) > MAX_TITLE:
        first, rest = first[:MAX_TITLE - 1] + "…", f"…{first[MAX_TITLE - 1:]}\n{rest}"
    return first, rest.strip()


def _body(rest: str, rule: dict[str, Any]) -> str:
    """The rest of the message; without one, the rule's help when it is short; and the rule's help link."""
    body = rest
    if not body:
        for key in ("help", "fullDescription", "shortDescription"):
            text = _clean(_text(_obj(rule.get(key)).get("text")) or "").strip()
            if text and len(text) <= MAX_HELP:
                body = text
                break
    link = _text(rule.get("helpUri"))
    if link and link not in body:
        body = f"{body}\n\n{link}" if body else link
    return body[:MAX_BODY]


def _clean(text: str) -> str:
    return _CONTROL.sub("", strip_escapes(text)).replace("\t", "    ")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _line(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in _list(value) if isinstance(item, dict)]
