"""What `orchestra doctor` prints, in the order it matters: what stops this repository's agents (each
with its fix), then what is there, then the optional things no agent here needs on one line (each in
full with --all), then this repository's own state; the last line agrees with all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.words import plural
from orchestra.core.onboarding.doctor import WELL_KNOWN_KEYS, Finding

LABEL, SUBJECT = 8, 19  # column widths: "missing ", "OPENAI_API_KEY     "


@dataclass
class DoctorReport:
    """The lines to print, and the needed things that are missing (the command fails when there are any)."""

    lines: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


def doctor_report(findings: Sequence[Finding], state: Sequence[Finding], root: Path | None,
                  score_path: Path | None, show_all: bool = False) -> DoctorReport:
    """The report on findings (tools, CLIs, keys) and state (this repository's, at root, when in one)."""
    report = DoctorReport()
    blocking = [f for f in (*findings, *state) if f.needed and not f.ok]
    optional = [f for f in findings if not f.ok and not f.needed]
    for finding in blocking:
        report.lines += finding_lines(finding, "missing")
    if blocking:
        report.lines.append("")
    for finding in (f for f in findings if f.ok):
        report.lines += finding_lines(finding, "missing")
    if show_all:
        for finding in optional:
            report.lines += finding_lines(finding, "optional")
    elif optional:
        report.lines += optional_lines(optional)
    rest = [f for f in state if f not in blocking]
    if rest:
        report.lines += ["", f"This repository ({root}):"]
        for finding in rest:
            report.lines += finding_lines(finding, "note")
    report.gaps = [f.subject for f in blocking]
    report.lines += ["", summary(report.gaps, score_path)]
    return report


def finding_lines(finding: Finding, not_ok: str) -> list[str]:
    """One finding: ok, warn or the not_ok label, its subject and detail; its fix below when it has a problem."""
    label = "warn" if finding.warning else "ok" if finding.ok else not_ok
    lines = [f"{label:<{LABEL}} {finding.subject:<{SUBJECT}} {finding.detail}"]
    if finding.fix and (finding.warning or not finding.ok):
        lines.append(f"{'':{LABEL + 1}}{finding.fix}")
    return lines


def optional_lines(optional: Sequence[Finding]) -> list[str]:
    """The optional things that are absent, on one line: tools and CLIs by name, the vendors' keys counted."""
    keys = [f.subject for f in optional if f.subject in WELL_KNOWN_KEYS]
    others = [f.subject for f in optional if f.subject not in WELL_KNOWN_KEYS]
    parts = [f"not installed: {', '.join(others)}"] if others else []
    if keys:
        parts.append(f"not set: {plural(len(keys), 'provider key')}")
    return [f"{'optional':<{LABEL}} {'; '.join(parts)}",
            f"{'':{LABEL + 1}}no agent here needs them; `orchestra doctor --all` lists each, with how to get it"]


def summary(gaps: Sequence[str], score_path: Path | None) -> str:
    """The last line: what is missing for the score (or for orchestra itself, without one)."""
    where = f"the score {score_path}" if score_path else "no score here, so only orchestra's own needs"
    return f"Missing for {where}: {', '.join(gaps)}" if gaps else f"Nothing needed is missing ({where})."
