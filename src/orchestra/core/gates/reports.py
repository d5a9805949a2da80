"""Read test counts, failing test names and (from a JUnit XML report) each failing test's own output."""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.output import clean_line, strip_escapes

REPORT_LIMIT = 256 * 1024 * 1024  # bytes of a report read
MTIME_SLACK = 1.0  # seconds a report may seem older than its command (coarse file system clocks)


class ReportError(ValueError):
    """A report that cannot be used; the message says why ("was not written", "leads outside the tree", …)."""


def read_report(root: Path, relative: str, written_since: float | None = None, limit: int = REPORT_LIMIT) -> bytes:
    """The bytes of the report a check wrote at relative under root: a regular file inside root (never
    through a link out of it, never a FIFO that would block), written since then, at most limit bytes.
    The one way every gate reads a report (JUnit, SARIF, coverage): what an agent put there is untrusted."""
    path = root / relative
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise ReportError("was not written") from None
    except (OSError, RuntimeError) as error:
        raise ReportError(f"cannot be read ({error.__class__.__name__})") from None
    if not real.is_relative_to(root.resolve()):
        raise ReportError("leads outside the tree (a link)")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise ReportError(f"cannot be read ({error.strerror})") from None
    facts = os.fstat(fd)
    if not stat.S_ISREG(facts.st_mode):
        os.close(fd)
        raise ReportError("is not a regular file")
    with os.fdopen(fd, "rb") as file:
        if written_since is not None and facts.st_mtime < written_since - MTIME_SLACK:
            raise ReportError("is older than the command: this run of it did not write it")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ReportError(f"is larger than {limit // (1024 * 1024)} MiB")
    return data


FAILURE_TEXT_LIMIT = 8 * 1024  # characters of one failing test's output kept (its end: the assertion is there)
FAILURE_TEXTS_KEPT = 200  # failing tests whose output is kept


@dataclass(frozen=True)
class TestFailure:
    """One failing test: its name, its one-line message and its own output (traceback, assertion)."""

    name: str
    message: str = ""
    text: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "message": self.message, "text": self.text}


def kept_text(text: str, limit: int = FAILURE_TEXT_LIMIT) -> str:
    """text, or its last limit characters from a line start, after a line saying how much went."""
    if len(text) <= limit:
        return text
    end = text[-limit:]
    end = end.split("\n", 1)[1] if "\n" in end else end
    return f"[{len(text) - len(end)} characters above not kept]\n{end}"


_PYTEST_SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+)(?: in [\d.]+s.*)?\s*=*$")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected)")
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)")


@dataclass
class TestCounts:
    """Counts a test runner reported; None when the output had none."""

    passed: int | None = None
    failed: int | None = None
    failures: list[str] = field(default_factory=list)
    failure_texts: list[TestFailure] = field(default_factory=list)  # from a JUnit report only

    @property
    def found(self) -> bool:
        return self.passed is not None or self.failed is not None


def parse_pytest(lines: list[str]) -> TestCounts:
    """Counts from pytest's closing summary line, and the names in its FAILED/ERROR lines."""
    counts = TestCounts()
    for raw in lines:
        line = strip_escapes(raw).strip()
        failed = _PYTEST_FAILED.match(line)
        if failed and failed.group(1) not in counts.failures:
            counts.failures.append(failed.group(1))
        summary = _PYTEST_SUMMARY.match(line)
        if summary and _PYTEST_COUNT.search(summary.group("body")):
            numbers = {kind.rstrip("s"): int(n) for n, kind in _PYTEST_COUNT.findall(summary.group("body"))}
            if "passed" in numbers or "failed" in numbers or "error" in numbers:
                counts.passed = numbers.get("passed", 0)
                counts.failed = numbers.get("failed", 0) + numbers.get("error", 0)
    return counts


def parse_junit(worktree: Path, relative: str, written_since: float | None = None) -> TestCounts:
    """Counts and failing test names from the JUnit XML report a check wrote (read as read_report does);
    empty counts if it cannot be read or declares entities."""
    try:
        data = read_report(worktree, relative, written_since)
        if b"<!ENTITY" in data or b"<!DOCTYPE" in data[:4096] and b"[" in data[:4096]:
            return TestCounts()
        root = ET.fromstring(data)
    except (ReportError, ET.ParseError):
        return TestCounts()
    passed, failures, texts = 0, [], []
    for case in root.iter("testcase"):
        name = "::".join(filter(None, (case.get("classname"), case.get("name"))))
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            failures.append(name)
            if len(texts) < FAILURE_TEXTS_KEPT:
                texts.append(TestFailure(name, _first_line(problem.get("message") or ""),
                                         kept_text(_printable(problem.text or "").strip("\n"))))
        elif case.find("skipped") is None:
            passed += 1
    return TestCounts(passed=passed, failed=len(failures), failures=failures, failure_texts=texts)


def _first_line(text: str) -> str:
    lines = _printable(text).strip().splitlines()
    return lines[0][:500] if lines else ""


def _printable(text: str) -> str:
    """text without terminal escape and control codes (a report is the test's, and may hold anything)."""
    return "\n".join(clean_line(line.encode("utf-8", "replace")) for line in text.splitlines())
