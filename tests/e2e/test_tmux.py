"""End to end: the real `orchestra` executable in a real terminal (a private tmux server, 120x36).

Scenario A: two shell agents finish; the conductor accepts one and rejects the other by keys; git,
the checkout and the ledger show exactly that. Scenario B: a slow run started from the UI survives
the UI being SIGKILLed; a new UI shows it finishing with all its output. And `q` closes the UI while
agents keep working.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tmux import (
    HEIGHT, ORCHESTRA, WIDTH, Pane, Tmux, find_pane, focused_run, git, ledger_entries, make_repo, orchestra,
    pane_in_state, runs_json, stop_fleet, supervisors_of, tmux_available, wait_for_states, wait_until,
)

pytestmark = pytest.mark.skipif(not tmux_available(),
                                reason="tmux is not installed: these tests drive orchestra in a real tmux server")

TWO_AGENTS = """\
[orchestra]
target = "main"

[[agents]]
name = "alpha"
kind = "shell"
command = "sleep 1; sed -i 's/return 41/return 42/' app.py; echo 'alpha: fixed the answer'"
timeout = 60

[[agents]]
name = "beta"
kind = "shell"
command = "sleep 1; printf 'beta notes\\\\n' > notes.txt; echo 'beta: wrote notes'"
timeout = 60

[[specs]]
id = "answer"
intent = "Make answer() return 42"
allow = ["app.py", "notes.txt"]
deny = ["orchestra.toml"]
verify = [{ name = "compiles", command = "python3 -m py_compile app.py", timeout = 30 }]
agents = ["alpha", "beta"]
"""

STEPS = 6
SLOW_AGENT = f"""\
[orchestra]
target = "main"

[[agents]]
name = "plodder"
kind = "shell"
command = "for i in $(seq 1 {STEPS}); do echo \\"step $i of {STEPS}\\"; sleep 1; done; echo finished > result.txt"
timeout = 60

[[agents]]
name = "bystander"
kind = "shell"
command = "echo should not run"

[[specs]]
id = "slow"
intent = "Work slowly, then write result.txt"
agents = ["plodder"]

[[specs]]
id = "other"
intent = "Not this one"
agents = ["bystander"]
"""
STEP_LINES = [f"step {i} of {STEPS}" for i in range(1, STEPS + 1)]
EMPTY = Pane(run_id="", title="", lines=())


@pytest.fixture(autouse=True)
def orchestra_installed() -> None:
    assert ORCHESTRA.exists(), f"the orchestra console script is not installed next to {sys.executable}"


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Tmux]:
    tmux = Tmux(cwd=tmp_path)
    yield tmux
    tmux.kill()


def _repo(tmp_path: Path, score: str, files: dict[str, str] | None = None) -> Iterator[Path]:
    root = make_repo(tmp_path / "repo", score, files)
    try:
        yield root
    finally:
        stop_fleet(root)


@pytest.fixture
def two_agent_repo(tmp_path: Path) -> Iterator[Path]:
    yield from _repo(tmp_path, TWO_AGENTS, {"app.py": "def answer():\n    return 41\n", "README.md": "# e2e\n"})


@pytest.fixture
def slow_repo(tmp_path: Path) -> Iterator[Path]:
    yield from _repo(tmp_path, SLOW_AGENT)


def open_fleet(term: Tmux, repo: Path, name: str) -> str:
    term.cwd = repo
    target = term.open_orchestra(name)
    assert term.size(target) == (WIDTH, HEIGHT)
    return target


def wait_for_empty_fleet(term: Tmux, target: str) -> None:
    """The fleet is up with no runs: the top bar says so and the footer lists the keys."""
    term.wait_for(target, lambda s: "no runs" in s.split("\n", 1)[0] and "n New" in s, "an empty fleet")


def wait_for_focus(term: Tmux, target: str, run_id: str, run_ids: list[str], timeout: float = 5.0) -> None:
    try:
        wait_until(lambda: focused_run(term.capture(target, escapes=True), run_ids) == run_id,
                   f"the pane of {run_id} to have the focus", timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}. Screen:\n{term.capture(target)}") from None


def wait_for_ledger(repo: Path, action: str, run_id: str, timeout: float = 10.0) -> dict:
    def found() -> dict | None:
        entries = ledger_entries(repo)
        return entries[-1] if entries and entries[-1]["action"] == action and entries[-1]["run"] == run_id else None
    return wait_until(found, f"a ledger entry {action} {run_id}", timeout)


def test_accept_and_reject_by_keys(term: Tmux, two_agent_repo: Path) -> None:
    repo = two_agent_repo
    first, second = orchestra(repo, "spawn", "answer").stdout.split()
    runs = runs_json(repo)
    assert (runs[first]["agent"], runs[second]["agent"]) == ("alpha", "beta")

    ui = open_fleet(term, repo, "fleet")
    term.wait_for(ui, lambda s: pane_in_state(first, "review")(s) and pane_in_state(second, "review")(s),
                  "both panes in review", timeout=15)
    wait_for_focus(term, ui, first, [first, second])

    # -- accept the focused first run ------------------------------------------------------------
    term.keys(ui, "a")
    deadline = time.monotonic() + 10
    while not (ledger_entries(repo) and ledger_entries(repo)[-1]["action"] == "accept"):
        screen = term.capture(ui)
        if f"Accept {first} (alpha)?" in screen and "(y)" in screen:
            term.keys(ui, "y")  # a gate was not green yet (still running): the app asks first
        assert time.monotonic() < deadline, f"no accept in the ledger 10 s after pressing a. Screen:\n{screen}"
        time.sleep(0.1)
    entry = wait_for_ledger(repo, "accept", first)
    assert entry["agent"] == "alpha"
    assert orchestra(repo, "ledger", "verify", check=False).returncode == 0

    head = git(repo, "rev-list", "--parents", "-n", "1", "main").split()
    assert len(head) == 3, "accept must record a merge commit on main"
    assert head[2] == runs_json(repo)[first]["candidate"]
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert f"Accept orchestra run {first}" in message and f"Orchestra-Run: {first}" in message
    assert (repo / "app.py").read_text() == "def answer():\n    return 42\n"
    assert not (repo / "notes.txt").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert runs_json(repo)[first]["state"] == "accepted"
    # A decided run leaves the grid: the top bar counts it, and the focus moves to the run still shown.
    term.wait_for(ui, lambda s: "1 decided hidden" in s and find_pane(s, first) is None,
                  f"{first}'s pane archived", timeout=5)

    # -- the other run, now the only pane, is rejected with a reason --------------------------------
    wait_for_focus(term, ui, second, [first, second])
    term.keys(ui, "r")
    term.wait_for_text(ui, f"Reject {second} (beta)")
    reason = "notes are not part of this spec"
    term.type(ui, reason)
    term.wait_for_text(ui, reason)
    term.keys(ui, "Enter")
    entry = wait_for_ledger(repo, "reject", second)
    assert entry["reason"] == reason
    assert orchestra(repo, "ledger", "verify", check=False).returncode == 0
    rejected = runs_json(repo)[second]
    assert rejected["state"] == "rejected"
    assert git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{rejected['branch']}") == rejected["candidate"]
    assert not Path(rejected["worktree"]).exists()
    assert rejected["worktree"] not in git(repo, "worktree", "list", "--porcelain")
    assert not (repo / "notes.txt").exists()
    term.wait_for_text(ui, "2 decided hidden")
    term.keys(ui, "H")  # shows the decided runs again
    screen = term.wait_for(ui, pane_in_state(second, "rejected"), f"{second}'s pane in state rejected", timeout=5)
    assert find_pane(screen, first).shows_state("accepted")


def test_runs_survive_a_killed_ui(term: Tmux, slow_repo: Path) -> None:
    repo = slow_repo
    ui = open_fleet(term, repo, "first")
    wait_for_empty_fleet(term, ui)

    # -- start the run from the UI: `n`, the first spec is highlighted, ctrl+s starts it ---------------
    term.keys(ui, "n")
    term.wait_for_text(ui, "New runs")
    term.keys(ui, "C-s")
    run_id = wait_until(lambda: next(iter(runs_json(repo)), None), "a run started from the UI", 5)
    runs = runs_json(repo)
    assert list(runs) == [run_id] and runs[run_id]["spec"] == "slow" and runs[run_id]["agent"] == "plodder"
    term.wait_for(ui, lambda s: (p := find_pane(s, run_id)) is not None and p.shows_state("working")
                  and "step 2 of 6" in p.text, f"{run_id} working with its output", timeout=8)

    # -- kill the UI outright while the agent works ---------------------------------------------------
    pid = term.app_pid(ui)
    assert "orchestra" in Path(f"/proc/{pid}/cmdline").read_text()
    os.kill(pid, signal.SIGKILL)
    assert term.wait_for_exit(ui) == "signal 9"
    assert runs_json(repo)[run_id]["state"] == "working", "the run must keep working without the UI"
    assert supervisors_of(repo), "the run's supervisor must outlive the UI"

    # -- a new UI finds the run and watches it finish ------------------------------------------------------
    ui = open_fleet(term, repo, "second")
    screen = term.wait_for(ui, pane_in_state(run_id, "review"), f"{run_id} in review", timeout=12)
    screen = term.wait_for(ui, lambda s: all(line in (find_pane(s, run_id) or EMPTY).text for line in STEP_LINES),
                           "every output line in the pane", timeout=3)
    pane = find_pane(screen, run_id)
    assert [line.strip() for line in pane.lines if line.strip().startswith("step ")] == STEP_LINES
    log = orchestra(repo, "log", run_id).stdout.splitlines()
    assert [line for line in log if line.startswith("step ")] == STEP_LINES
    run = runs_json(repo)[run_id]
    assert run["state"] == "review" and run["diff"]["files"] == 1
    assert (Path(run["worktree"]) / "result.txt").read_text() == "finished\n"

    # -- q closes the UI cleanly ----------------------------------------------------------------------
    term.keys(ui, "q")
    assert term.wait_for_exit(ui) == "exit 0"


def test_quit_leaves_agents_working(term: Tmux, slow_repo: Path) -> None:
    repo = slow_repo
    ui = open_fleet(term, repo, "fleet")
    wait_for_empty_fleet(term, ui)

    # a run spawned headless appears in the open UI within about a second
    (run_id,) = orchestra(repo, "spawn", "slow").stdout.split()
    spawned = time.monotonic()
    term.wait_for(ui, lambda s: find_pane(s, run_id) is not None, f"a pane for {run_id}", timeout=5)
    appeared = time.monotonic() - spawned
    assert appeared <= 1.5, f"{run_id} took {appeared:.2f}s to appear in the open UI"
    term.wait_for(ui, lambda s: (p := find_pane(s, run_id)) is not None and "step 1 of 6" in p.text,
                  f"{run_id}'s first output line", timeout=8)

    term.keys(ui, "q")
    assert term.wait_for_exit(ui) == "exit 0"
    assert runs_json(repo)[run_id]["state"] == "working", "quitting the UI must not stop the agents"

    run = wait_for_states(repo, [run_id], {"review"}, timeout=12)[run_id]
    log = orchestra(repo, "log", run_id).stdout.splitlines()
    assert [line for line in log if line.startswith("step ")] == STEP_LINES
    assert (Path(run["worktree"]) / "result.txt").read_text() == "finished\n"
