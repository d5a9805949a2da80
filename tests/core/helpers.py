"""Helpers for the core tests: polling with a deadline, scores, settled runs, process checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestra.core.fleet import Fleet
from orchestra.core.runs.run import Run
from tests.conftest import git

T = TypeVar("T")

PYTHON = sys.executable
FAKE_KEY = "sk-test-4c0ffee5ecret9"  # the key llm agents of the tests read from FAKE_PROVIDER_KEY
SRC = str(Path(__file__).resolve().parents[2] / "src")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
             message: str | Callable[[], str] = "") -> T:
    """Poll predicate until it returns something truthy, and return that; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s waiting for "
                                 f"{text or getattr(predicate, '__name__', 'a condition')}")
        time.sleep(interval)


def toml_str(value: str) -> str:
    """A TOML literal string for value (multi-line literal when it holds a quote or newline)."""
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    assert "'''" not in value
    return f"'''{value}'''"


def score_text(agents: dict[str, str | dict[str, Any]], specs: list[dict[str, Any]] | None = None,
               target: str | None = None, sandbox: str | None = None) -> str:
    """orchestra.toml text: shell agents by name (a command, or a table of extra keys) and specs."""
    out = []
    if target or sandbox:
        out.append("[orchestra]" + (f"\ntarget = {toml_str(target)}" if target else "")
                   + (f"\nsandbox = {toml_str(sandbox)}" if sandbox else "") + "\n")
    for name, agent in agents.items():
        fields = {"command": agent} if isinstance(agent, str) else dict(agent)
        out.append(f"[[agents]]\nname = {toml_str(name)}\nkind = 'shell'")
        for key, value in fields.items():
            out.append(f"{key} = {toml_value(value)}")
        out.append("")
    for spec in specs or []:
        out.append("[[specs]]")
        for key, value in spec.items():
            out.append(f"{key} = {toml_value(value)}")
        out.append("")
    return "\n".join(out) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def write_score(repo: Path, text: str, commit: bool = True) -> Path:
    """Write orchestra.toml at the repository root and (by default) commit it, so the checkout stays clean."""
    path = repo / "orchestra.toml"
    path.write_text(text)
    if commit:
        git(repo, "add", "orchestra.toml")
        git(repo, "commit", "-q", "-m", "score")
    return path


def expected_gates(run: Run) -> set[str]:
    """The gates a settled run in review has: the boundary, the secret scan, its checks and its reviewers."""
    return set(run.expected_gates())


def is_settled(run: Run) -> bool:
    """Whether a run has finished and, in review, every gate has a final result on its current tree."""
    if run.is_active:
        return False
    if run.state != "review":
        return True
    return expected_gates(run) <= set(run.gates) and all(
        gate.status not in ("pending", "running") and gate.tree == run.tree for gate in run.gates.values())


def wait_settled(fleet: Fleet, run_id: str, timeout: float = 30.0) -> Run:
    """Poll a run until it is settled (see is_settled) and return it."""
    last: list[Run] = []

    def check() -> Run | None:
        run = fleet.get(run_id)
        last[:] = [run]
        return run if is_settled(run) else None

    return wait_for(check, timeout, message=lambda: f"run {run_id} to settle; it is {describe(last[0])}"
                    if last else f"run {run_id} to settle")


def fleet_in_review(make_fleet: Callable[[Path, str], Fleet], repo: Path) -> tuple[Fleet, str]:
    """A fleet on repo whose one run is in review: agent coder appends a line to work.txt (the instruction,
    when redirected), and the spec's gate checks the file is not empty."""
    fleet = make_fleet(repo, score_text({"coder": 'echo "${ORCHESTRA_REDIRECT:-first pass}" >> work.txt'}, [
        {"id": "work", "intent": "write work.txt", "verify": [{"name": "check", "command": "test -s work.txt"}]}]))
    run = wait_settled(fleet, fleet.spawn("work")[0].id)
    assert run.state == "review", run.message
    return fleet, run.id


def wait_state(fleet: Fleet, run_id: str, *states: str, timeout: float = 30.0) -> Run:
    """Poll a run until it is in one of states and return it."""
    last: list[Run] = []

    def check() -> Run | None:
        run = fleet.get(run_id)
        last[:] = [run]
        return run if run.state in states else None

    return wait_for(check, timeout, message=lambda: f"run {run_id} to be {'/'.join(states)}; it is "
                    f"{describe(last[0]) if last else '?'}")


def describe(run: Run) -> str:
    gates = {name: (g.status, (g.tree or "")[:7]) for name, g in run.gates.items()}
    return f"{run.state} ({run.message!r}) tree={(run.tree or '')[:7]} gates={gates}"


def events(fleet: Fleet, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    found, _ = fleet.store.read_events(run_id)
    return [e for e in found if kind is None or e.get("type") == kind]


def output_lines(fleet: Fleet, run_id: str) -> list[str]:
    return [e["text"] for e in events(fleet, run_id, "output")]


def notes(fleet: Fleet, run_id: str) -> list[str]:
    return [e["text"] for e in events(fleet, run_id, "note")]


def wait_output(fleet: Fleet, run_id: str, line: str, timeout: float = 30.0) -> None:
    """Poll a run's event log until the agent printed line."""
    wait_for(lambda: line in output_lines(fleet, run_id), timeout, message=f"output line {line!r} of {run_id}")


def processes_with(marker: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of every live process (not a zombie) whose command line contains marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            found.append((int(entry), cmdline.strip()))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cli(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestra.cli ARGS` as its own process."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([PYTHON, "-m", "orchestra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def ledger_lines(fleet: Fleet) -> list[dict[str, Any]]:
    path = fleet.ledger.path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def commit_vendored_library(repo: Path) -> None:
    """Commit node_modules/lib/index.js, tracked although .gitignore ignores node_modules/ (vendored code)."""
    (repo / "node_modules" / "lib").mkdir(parents=True)
    (repo / "node_modules" / "lib" / "index.js").write_text("module.exports = 1;\n")
    (repo / ".gitignore").write_text("node_modules/\n")
    git(repo, "add", "-f", ".gitignore", "node_modules/lib/index.js")
    git(repo, "commit", "-q", "-m", "vendored, tracked despite the ignore")


def write_settings(text: str) -> Path:
    """Write the user's settings file (in the test's own XDG config dir) with text; its path."""
    from orchestra.core.settings import settings_path
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
