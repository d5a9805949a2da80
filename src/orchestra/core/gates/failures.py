"""A failed check's own output for the conductor: each failing test's message and traceback, from the
JUnit report the check wrote (kept beside its log) or from the failure sections of its log.

A log may be megabytes: only its last READ_LIMIT bytes are read, and GateOutput says when it was cut.
Reading is blocking file I/O: call gate_output from a worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.files import owner_only
from orchestra.core.base.output import clean_line
from orchestra.core.gates.reports import FAILURE_TEXTS_KEPT, TestFailure, kept_text

READ_LIMIT = 200 * 1024  # bytes read from the end of a log
TAIL_SHOWN = 60  # lines of a log shown when it has no failure sections
SIDECAR_LIMIT = 4 * 1024 * 1024  # bytes of a failures file read (it is orchestra's own, but never trusted)

_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$")
_HEADER = re.compile(r"^=+ .+ =+$")
_TITLE = re.compile(r"^_{2,} (.+?) _{2,}$")
_SUMMARY_NAME = re.compile(r"^(?:FAILED|ERROR) (\S+)")
_PHASE = re.compile(r"^ERROR at (?:setup|teardown|collection) of ")


@dataclass
class GateOutput:
    """What a failed check left to read: its tests' own output, or its last lines, and where its log is."""

    log_path: Path
    failures: list[TestFailure] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the log's last lines, when no test's output was found
    source: str = "missing"  # "junit" | "log" (pytest's failure sections) | "tail" | "missing" (no log)
    cut: bool = False  # the log is longer than READ_LIMIT: only its end was read
    size: int = 0  # bytes in the log
    read: int = 0  # bytes read from its end


def failures_path(log_path: Path) -> Path:
    """Where the failing tests of the check logging to log_path are kept: `<name>.failures.json`."""
    return log_path.with_name(log_path.name.removesuffix(".log") + ".failures.json")


def save_failures(log_path: Path, failures: list[TestFailure]) -> None:
    """Keep the failing tests read from a check's report beside its log (none: remove an older file)."""
    path = failures_path(log_path)
    try:
        path.unlink(missing_ok=True)  # first: an older run's failures are never shown as this one's
        if failures:
            data = json.dumps([failure.to_json() for failure in failures[:FAILURE_TEXTS_KEPT]])
            with open(path, "w", encoding="utf-8", opener=owner_only) as file:
                file.write(data)
    except OSError:  # the check's result stands without it: its log's failure sections are read instead
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def gate_output(log_path: Path, limit: int = READ_LIMIT) -> GateOutput:
    """The failing tests' own output of the check logging to log_path: the kept JUnit failures, else the
    failure sections of pytest's output in the log's last limit bytes, else the log's last lines."""
    output = GateOutput(log_path)
    output.failures = _saved_failures(log_path)
    try:
        data, output.size, output.cut = _read_end(log_path, limit)
        output.read = min(limit, output.size)
    except OSError:
        if output.failures:
            output.source = "junit"
        return output
    lines = [clean_line(raw).rstrip() for raw in data.splitlines()]  # no escape or control codes reach the UI
    if output.failures:
        output.source = "junit"
    elif failures := pytest_failures(lines, output.cut):
        output.failures, output.source = failures, "log"
    else:
        output.lines, output.source = lines[-TAIL_SHOWN:], "tail"
    return output


def _saved_failures(log_path: Path) -> list[TestFailure]:
    try:
        with open(failures_path(log_path), encoding="utf-8", errors="replace") as file:
            records = json.loads(file.read(SIDECAR_LIMIT))
        return [TestFailure(str(r.get("name", "")), str(r.get("message", "")), str(r.get("text", "")))
                for r in records if isinstance(r, dict)]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def _read_end(path: Path, limit: int) -> tuple[bytes, int, bool]:
    """The last limit bytes of a file from a line start, its size, and whether it was cut."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        cut = size > limit
        if cut:
            file.seek(size - limit)
        data = file.read(limit)
    if cut:
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return data, size, cut


def pytest_failures(lines: list[str], cut: bool = False) -> list[TestFailure]:
    """Each test of pytest's FAILURES and ERRORS sections, named as its short summary names it; when the
    text was cut, a section that began before the cut counts too."""
    names = [m.group(1) for m in map(_SUMMARY_NAME.match, lines) if m]
    failures: list[TestFailure] = []
    title: str | None = None
    body: list[str] = []
    inside = cut  # the text may begin inside a section
    for line in lines:
        if _SECTION.match(line) or _HEADER.match(line):
            _add(failures, title, body, names)
            title, body, inside = None, [], bool(_SECTION.match(line))
        elif inside and (found := _TITLE.match(line)):
            _add(failures, title, body, names)
            title, body = found.group(1), []
        elif title is not None:
            body.append(line)
    _add(failures, title, body, names)
    return failures[:FAILURE_TEXTS_KEPT]


def _add(failures: list[TestFailure], title: str | None, body: list[str], names: list[str]) -> None:
    if title is None:
        return
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    message = next((line[1:].strip() for line in body if line.startswith("E ")), "")
    failures.append(TestFailure(_node_id(title, names), message[:500], kept_text("\n".join(body))))


def _node_id(title: str, names: list[str]) -> str:
    """The short summary's id for a section's title ("TestMean.test_empty" is "tests/t.py::TestMean::
    test_empty"), or the title when the summary did not name it."""
    bare = _PHASE.sub("", title)
    for name in names:
        if "::" in name and name.split("::", 1)[1].replace("::", ".") == bare:
            return name
    return title
