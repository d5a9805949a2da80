"""Read test counts and failing test names from a gate's output or JUnit XML report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.output import strip_escapes

_PYTEST_SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+)(?: in [\d.]+s.*)?\s*=*$")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected)")
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)")


@dataclass
class TestCounts:
    """Counts a test runner reported; None when the output had none."""

    passed: int | None = None
    failed: int | None = None
    failures: list[str] = field(default_factory=list)

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


def parse_junit(path: Path) -> TestCounts:
    """Counts and failing test names from a JUnit XML report; empty counts if it cannot be read."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return TestCounts()
    passed, failures = 0, []
    for case in root.iter("testcase"):
        name = "::".join(filter(None, (case.get("classname"), case.get("name"))))
        if case.find("failure") is not None or case.find("error") is not None:
            failures.append(name)
        elif case.find("skipped") is None:
            passed += 1
    return TestCounts(passed=passed, failed=len(failures), failures=failures)
