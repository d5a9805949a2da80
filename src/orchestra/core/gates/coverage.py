"""The coverage gate: a check whose command writes a coverage report (coverage.py's JSON, or Cobertura XML).

It reads the total line coverage and the coverage of the lines the candidate adds or changes (those of
them the report counts as executable), and fails under `min_coverage`, under `min_changed_coverage`, or
when the total is more than `max_coverage_drop` points below the merge base's (the same command run on
the base's tree, kept per base tree and command; see gates.baseline). Percentages are compared as they
are shown, to a tenth. A report that is missing, older than the command, unreadable or malformed fails
the gate with the reason; a command that failed leaves the gate failed, with the numbers added.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from orchestra.core.gates.baseline import (
    NoBaseline,
    kept_path,
    key_of,
    recall,
    remember,
    run_other,
)
from orchestra.core.gates.evidence import CheckContext, OtherTree
from orchestra.core.gates.reports import ReportError, read_report
from orchestra.core.runs.run import Gate

SHOWN_RANGES = 30


@dataclass
class Coverage:
    """What a report says: per file (repo-relative where it is inside the tree), covered and missed lines."""

    files: dict[str, tuple[frozenset[int], frozenset[int]]] = field(default_factory=dict)

    @property
    def covered(self) -> int:
        return sum(len(hit) for hit, _ in self.files.values())

    @property
    def statements(self) -> int:
        return sum(len(hit | missed) for hit, missed in self.files.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.statements if self.statements else 100.0

    def lines_of(self, path: str) -> tuple[frozenset[int], frozenset[int]] | None:
        """(covered, missed) of a repo-relative path; a report written in a subdirectory names it by the
        rest of its path, which is taken when only one file matches."""
        if path in self.files:
            return self.files[path]
        found = [name for name in self.files if not name.startswith("/") and path.endswith("/" + name)]
        return self.files[found[0]] if len(found) == 1 else None


@dataclass
class ChangedCoverage:
    """The lines the candidate changed that the report counts: how many, how many covered, which not."""

    covered: int = 0
    executable: int = 0
    uncovered: list[str] = field(default_factory=list)  # "path:12-14" ranges

    @property
    def percent(self) -> float | None:
        return 100.0 * self.covered / self.executable if self.executable else None


# -- reading a report ------------------------------------------------------------------------------------

def parse_report(data: bytes, root: Path) -> Coverage:
    """A coverage.py JSON or Cobertura XML report; paths made relative to root (the tree it ran in)."""
    text = data.lstrip()
    if text.startswith(b"{"):
        return parse_json(text, root)
    if text.startswith(b"<"):
        return parse_cobertura(text, root)
    raise ReportError("is neither coverage.py JSON nor Cobertura XML")


def load_coverage(root: Path, relative: str, written_since: float | None = None) -> Coverage:
    """The report at relative under root (see read_report); one that measured no line is refused too."""
    coverage = parse_report(read_report(root, relative, written_since), root)
    if not coverage.statements:
        raise ReportError("measured no lines (is its source set?)")
    return coverage


def parse_json(data: bytes, root: Path) -> Coverage:
    """coverage.py's `coverage json` report."""
    try:
        report = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ReportError(f"is not valid JSON ({str(error)[:100]})") from None
    files = report.get("files") if isinstance(report, dict) else None
    if not isinstance(files, dict):
        raise ReportError("is not a coverage.py JSON report (no \"files\" table)")
    coverage = Coverage()
    for name, entry in files.items():
        hit, missed = (entry.get(key) if isinstance(entry, dict) else None
                       for key in ("executed_lines", "missing_lines"))
        if not isinstance(name, str) or not _line_list(hit) or not _line_list(missed):
            raise ReportError(f"has a malformed entry for {str(name)[:100]!r}")
        _add(coverage, _relative(name, root) or name, set(hit), set(missed))
    return coverage


def parse_cobertura(data: bytes, root: Path) -> Coverage:
    """A Cobertura XML report (coverage.py's `coverage xml`, and most other tools'); a document that
    declares entities or an internal DTD is refused (it could expand without bound)."""
    if b"<!ENTITY" in data or _internal_subset(data):
        raise ReportError("declares XML entities or an internal DTD: refused")
    try:
        top = ET.fromstring(data)
    except ET.ParseError as error:
        raise ReportError(f"is not valid XML ({error})") from None
    if top.tag != "coverage":
        raise ReportError(f"is not a Cobertura report (its root is <{top.tag[:40]}>)")
    sources = [Path(s.text.strip()) for s in top.iter("source") if s.text and s.text.strip()]
    coverage = Coverage()
    for cls in top.iter("class"):
        name = cls.get("filename")
        if not name:
            raise ReportError("has a <class> without a filename")
        hit, missed = set(), set()
        for line in cls.iter("line"):
            number, hits = _int(line.get("number")), _int(line.get("hits"))
            if number is None or hits is None:
                raise ReportError(f"has a malformed <line> in {name[:100]!r}")
            (hit if hits > 0 else missed).add(number)
        _add(coverage, _cobertura_path(name, sources, root), hit, missed)
    return coverage


def _internal_subset(data: bytes) -> bool:
    start = data.find(b"<!DOCTYPE")
    if start < 0:
        return False
    end = data.find(b">", start)
    return b"[" in data[start:end if end >= 0 else len(data)]


def _add(coverage: Coverage, name: str, hit: set[int], missed: set[int]) -> None:
    """Add a file's lines (a file several classes name is their union; a line hit in one is hit)."""
    old_hit, old_missed = coverage.files.get(name, (frozenset(), frozenset()))
    hit = set(old_hit) | hit
    coverage.files[name] = (frozenset(hit), frozenset((set(old_missed) | missed) - hit))


def _line_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in value)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _relative(name: str, root: Path) -> str | None:
    """name as a path relative to root, or None when it lies outside."""
    path = PurePosixPath(name)
    if path.is_absolute():
        for top in dict.fromkeys((root, root.resolve())):
            if path.is_relative_to(top):
                return path.relative_to(top).as_posix()
        return None
    parts = [part for part in path.parts if part not in ("", ".")]
    return "/".join(parts) if parts and ".." not in parts else None


def _cobertura_path(name: str, sources: list[Path], root: Path) -> str:
    """A Cobertura filename (relative to one of its sources) as a repo-relative path where one exists."""
    for source in sources:
        source = source if source.is_absolute() else root / source
        relative = _relative(str(source / name), root)
        if relative is not None and (root / relative).is_file():
            return relative
    return _relative(name, root) or name


# -- judging -----------------------------------------------------------------------------------------------

def changed_coverage(coverage: Coverage, changed: dict[str, set[int]]) -> ChangedCoverage:
    """The coverage of the changed lines the report counts as executable; uncovered ones as ranges."""
    result = ChangedCoverage()
    for path in sorted(changed):
        lines = coverage.lines_of(path)
        if lines is None:
            continue
        hit, missed = lines
        result.covered += len(changed[path] & hit)
        result.executable += len(changed[path] & (hit | missed))
        result.uncovered += [f"{path}:{span}" for span in _spans(sorted(changed[path] & missed), hit | missed)]
    return result


def _spans(lines: list[int], executable: frozenset[int]) -> list[str]:
    """Uncovered lines as ranges: two join when no executable line lies between them."""
    ordered = sorted(executable)
    spans: list[list[int]] = []
    for line in lines:
        if spans and bisect_right(ordered, spans[-1][1]) >= bisect_left(ordered, line):
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


async def judge_coverage(ctx: CheckContext, gate: Gate) -> Gate:
    """The gate of a coverage check whose command has run on the candidate."""
    gate = await _judge(ctx, gate)
    gate.finished = time.time()  # a run on the base is part of this gate's time
    return gate


async def _judge(ctx: CheckContext, gate: Gate) -> Gate:
    check, ran_ok = ctx.check, gate.status == "passed"
    gate.kind = "coverage"
    try:
        coverage = await asyncio.to_thread(load_coverage, ctx.worktree, check["coverage"], gate.started)
    except ReportError as error:
        return _closed(gate, f"the coverage report {check['coverage']} {error}")
    changed = changed_coverage(coverage, await asyncio.to_thread(ctx.changed_lines))
    total = round(coverage.percent, 1)
    reasons, base = _thresholds(check, total, changed), None
    if check.get("max_coverage_drop") is not None and ran_ok:
        base = await _compared_with_base(ctx, total, reasons)
    gate.details = _details(check, coverage, changed, base, reasons)
    summary, uncovered = _summary(total, changed, base), [f"{span} not covered" for span in changed.uncovered]
    if not ran_ok:
        gate.summary, gate.failures = f"{gate.summary} · {summary}", _capped(gate.failures + uncovered)
        return gate
    gate.status = "failed" if reasons else "passed"
    gate.summary = f"{summary} — {'; '.join(reasons)}" if reasons else summary
    gate.failures = _capped(uncovered) if reasons else []
    return gate


async def _compared_with_base(ctx: CheckContext, total: float, reasons: list[str]) -> float | None:
    """The base's total (None when unknown), adding to reasons when the total dropped too far from it."""
    allowed = ctx.check["max_coverage_drop"]
    try:
        base = await base_total(ctx)
    except NoBaseline as error:
        reasons.append(f"the merge base's coverage is unknown: {error}")
        return None
    if total < round(base, 1) - allowed:
        reasons.append(f"{round(base, 1) - total:.1f} points below the base (at most {allowed:g})")
    return base


def _thresholds(check: dict[str, Any], total: float, changed: ChangedCoverage) -> list[str]:
    reasons = []
    if check.get("min_coverage") is not None and total < check["min_coverage"]:
        reasons.append(f"total under {check['min_coverage']:g}%")
    least = check.get("min_changed_coverage")
    if least is not None and changed.percent is not None and round(changed.percent, 1) < least:
        reasons.append(f"changed lines under {least:g}%")
    return reasons


def _summary(total: float, changed: ChangedCoverage, base: float | None) -> str:
    parts = [f"total {total:.1f}%"]
    if changed.executable:
        parts.append(f"changed lines {_pct(changed.percent)} ({changed.covered}/{changed.executable})")
    else:
        parts.append("no changed executable lines")
    if base is not None:
        parts.append(f"base {base:.1f}%")
    return " · ".join(parts)


def _details(check: dict[str, Any], coverage: Coverage, changed: ChangedCoverage, base: float | None,
             reasons: list[str]) -> dict[str, Any]:
    percent = changed.percent
    return {"report": check["coverage"], "total": round(coverage.percent, 2), "covered": coverage.covered,
            "statements": coverage.statements, "changed": None if percent is None else round(percent, 2),
            "changed_covered": changed.covered, "changed_executable": changed.executable,
            "uncovered": _capped(changed.uncovered), "base": None if base is None else round(base, 2),
            "thresholds": {key: check[key] for key in ("min_coverage", "min_changed_coverage", "max_coverage_drop")
                           if check.get(key) is not None},
            "reasons": reasons}


def _capped(failures: list[str]) -> list[str]:
    if len(failures) <= SHOWN_RANGES:
        return failures
    return failures[:SHOWN_RANGES] + [f"… and {len(failures) - SHOWN_RANGES} more not covered"]


def _closed(gate: Gate, reason: str) -> Gate:
    """The gate failed closed: the report could not be used."""
    gate.status = "failed"
    gate.summary = reason if gate.exit_code in (0, None) else f"{gate.summary} · {reason}"
    gate.details = {"reasons": [reason]}
    return gate


async def base_total(ctx: CheckContext) -> float:
    """The merge base's total coverage by the same command (kept per base tree, command and report)."""
    check = ctx.check
    key = await asyncio.to_thread(key_of, ctx, "coverage", check["command"], check["coverage"])
    path = kept_path(ctx, "base", "coverage")
    kept = recall(path, key)
    if kept is not None and isinstance(kept.get("total"), (int, float)):
        return float(kept["total"])
    gate, read = await run_other(ctx, OtherTree(check, ctx.since, "base", collect=partial(_collect, check["coverage"])))
    if isinstance(read, str):
        raise NoBaseline(f"its report {check['coverage']} {read} ({gate.summary} there)")
    remember(path, key, {"total": read.percent, "exit_code": gate.exit_code, "summary": gate.summary})
    return read.percent


def _collect(relative: str, directory: Path) -> Coverage | str:
    """The report the command wrote in directory, or why there is none."""
    try:
        return load_coverage(directory, relative)
    except ReportError as error:
        return str(error)
