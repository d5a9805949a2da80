"""Helpers for end-to-end tests: drive the real `orchestra` executable in a private tmux server.

Everything here talks to real processes: a tmux server on its own socket (`tmux -L NAME -f /dev/null`),
the installed console script, git, and the run supervisors orchestra starts. Screens are read with
`capture-pane -p` and polled against a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORCHESTRA = Path(sys.executable).parent / "orchestra"
WIDTH, HEIGHT = 120, 36
SUPERVISOR_MODULE = "orchestra.core.supervise.supervisor"
EXIT_MARK = "[e2e: the program exited with status "
# Variables the UI must see: the test's isolated HOME/XDG dirs and git identity (set by the autouse fixture).
PASSED_ENV = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
              "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "PATH", "PYTHONPATH", "VIRTUAL_ENV")


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class ScreenTimeout(AssertionError):
    """A screen never showed what a test waited for; the message carries the last capture."""


class Tmux:
    """A private tmux server of WIDTHxHEIGHT whose windows run commands in cwd with env."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.socket = f"orchestra-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd
        self.env = {**(env if env is not None else os.environ)}
        self.env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.env.pop("TMUX", None)
        self.env.pop("NO_COLOR", None)
        self.started = False

    # -- the server ---------------------------------------------------------------------------
    def cmd(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, timeout=15)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        """Start the server with an idle keeper window, so windows may die without ending the server."""
        self.cmd("new-session", "-d", "-s", "e2e", "-n", "keeper", "-x", str(WIDTH), "-y", str(HEIGHT),
                 "-c", str(self.cwd), "sleep 100000")
        self.started = True
        # (not `window-size manual`: tmux 3.3a's server crashes on new-window with it and no client)
        for option in (("remain-on-exit", "on"), ("default-size", f"{WIDTH}x{HEIGHT}"), ("status", "off")):
            self.cmd("set-option", "-g", *option)

    def kill(self) -> None:
        """Kill the server and remove its socket file (tmux 3.3a leaves it behind)."""
        if self.started:
            socket_path = self.cmd("display-message", "-p", "#{socket_path}", check=False).strip()
            self.cmd("kill-server", check=False)
            self.started = False
            if socket_path.endswith(self.socket):
                deadline = time.monotonic() + 2
                while Path(socket_path).exists() and time.monotonic() < deadline:
                    try:
                        Path(socket_path).unlink()
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.05)

    def shell_command(self, argv: list[str]) -> str:
        """A shell command running argv with the isolated environment, then saying how it ended.

        The shell stays (the pane never dies): tmux 3.3a sometimes misses the exit of a pane's process,
        leaving it a zombie with no exit status, so the status is printed on the screen instead.
        """
        assignments = [f"{name}={self.env[name]}" for name in PASSED_ENV if self.env.get(name)]
        assignments += ["TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "COLORTERM=truecolor"]
        command = " ".join(shlex.quote(part) for part in ["env", *assignments, *argv])
        return f'{command}; echo "{EXIT_MARK}$?]"; exec sleep 100000'

    def open_window(self, name: str, argv: list[str]) -> str:
        """Run argv in a new WIDTHxHEIGHT window; return its target."""
        if not self.started:
            self.start()
        self.cmd("new-window", "-d", "-n", name, "-c", str(self.cwd), self.shell_command(argv))
        return f"e2e:{name}"

    def open_orchestra(self, name: str, *args: str) -> str:
        return self.open_window(name, [str(ORCHESTRA), *args])

    # -- reading and typing -------------------------------------------------------------------
    def capture(self, target: str, escapes: bool = False) -> str:
        return self.cmd("capture-pane", "-p", *(["-e"] if escapes else []), "-t", target)

    def display(self, target: str, fmt: str) -> str:
        return self.cmd("display-message", "-p", "-t", target, fmt).strip()

    def size(self, target: str) -> tuple[int, int]:
        width, height = self.display(target, "#{pane_width} #{pane_height}").split()
        return int(width), int(height)

    def app_pid(self, target: str) -> int:
        """The pid of the program the window runs (the child of the pane's shell)."""
        shell = int(self.display(target, "#{pane_pid}"))
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, f"expected one process under the pane's shell {shell}, found {children}"
        return int(children[0])

    def wait_for_exit(self, target: str, timeout: float = 5.0) -> str:
        """Wait for the window's program to end; return how: "exit N" or "signal N"."""
        screen = self.wait_for(target, lambda s: EXIT_MARK in s, "the program's exit", timeout)
        status = int(screen.split(EXIT_MARK, 1)[1].split("]", 1)[0])
        return f"signal {status - 128}" if status > 128 else f"exit {status}"

    def keys(self, target: str, *keys: str) -> None:
        """Press keys by tmux name (a, Enter, Right, C-s, Escape)."""
        self.cmd("send-keys", "-t", target, *keys)

    def type(self, target: str, text: str) -> None:
        """Type text literally."""
        self.cmd("send-keys", "-t", target, "-l", text)

    def wait_for(self, target: str, check: Callable[[str], Any], what: str, timeout: float = 10.0,
                 interval: float = 0.05) -> str:
        """Poll the screen until check(screen) is truthy; return that screen, or fail showing the last one."""
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.capture(target)
            if check(screen):
                return screen
            if time.monotonic() >= deadline:
                dead = " (the program has exited)" if EXIT_MARK in screen else ""
                raise ScreenTimeout(f"after {timeout:g}s the screen still does not show {what}{dead}. "
                                    f"Last capture:\n{screen}")
            time.sleep(interval)

    def wait_for_text(self, target: str, text: str, timeout: float = 10.0) -> str:
        return self.wait_for(target, lambda screen: text in screen, repr(text), timeout)


# -- reading the fleet screen ---------------------------------------------------------------------
@dataclass(frozen=True)
class Pane:
    """One run pane found on a captured screen: its title, and its inside text line by line."""

    run_id: str
    title: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def status(self) -> str:
        """The first inside line: state glyph, state, elapsed time, diff stat."""
        return self.lines[0].strip() if self.lines else ""

    def shows_state(self, state: str) -> bool:
        return re.search(rf"(^|\s){re.escape(state)}(\s|$)", self.status) is not None


def find_pane(screen: str, run_id: str) -> Pane | None:
    """The pane whose border title starts with run_id, read from its top border to its bottom border."""
    rows = screen.split("\n")
    title = re.compile(rf"╭─ ({re.escape(run_id)} [^─╮]*?) ─")
    for top, row in enumerate(rows):
        match = title.search(row)
        if not match:
            continue
        left = match.start()
        right = row.find("╮", match.end())
        if right < 0:
            continue
        lines = []
        for inside in rows[top + 1:]:
            if len(inside) <= left or inside[left] in "╰":
                break
            lines.append(inside[left + 1:right])
        return Pane(run_id=run_id, title=match.group(1).strip(), lines=tuple(lines))
    return None


def pane_in_state(run_id: str, state: str) -> Callable[[str], bool]:
    def check(screen: str) -> bool:
        pane = find_pane(screen, run_id)
        return pane is not None and pane.shows_state(state)
    return check


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def focused_run(screen_with_escapes: str, run_ids: list[str]) -> str | None:
    """Which run's pane has the focus: a focused pane's border title is bold (`border-title-style: bold`)."""
    for line in screen_with_escapes.split("\n"):
        for run_id in run_ids:
            at = line.find(f" {run_id} ")
            if at < 0 or "╭" not in line[:at]:
                continue
            # the SGR attributes in force where the title starts
            bold = False
            for match in _SGR.finditer(line[:at]):
                codes = match.group(1).split(";") if match.group(1) else ["0"]
                i = 0
                while i < len(codes):
                    code = codes[i]
                    if code in ("38", "48") and i + 1 < len(codes):
                        i += 3 if codes[i + 1] == "5" else 5
                        continue
                    if code in ("0", ""):
                        bold = False
                    elif code == "1":
                        bold = True
                    elif code == "22":
                        bold = False
                    i += 1
            if bold:
                return run_id
    return None


# -- the command line and the fleet on disk -----------------------------------------------------------
def orchestra(repo: Path, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(ORCHESTRA), *args], cwd=repo, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"orchestra {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def runs_json(repo: Path) -> dict[str, dict[str, Any]]:
    return {run["id"]: run for run in json.loads(orchestra(repo, "runs", "--json").stdout)}


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_for_states(repo: Path, run_ids: list[str], states: set[str], timeout: float = 15.0) -> dict[str, dict]:
    def done() -> dict[str, dict] | None:
        runs = runs_json(repo)
        return runs if all(runs.get(rid, {}).get("state") in states for rid in run_ids) else None
    try:
        return wait_until(done, f"runs {run_ids} to reach {sorted(states)}", timeout, interval=0.1)
    except AssertionError as error:
        raise AssertionError(f"{error}; runs now: "
                             f"{ {rid: run['state'] for rid, run in runs_json(repo).items()} }") from None


def ledger_entries(repo: Path) -> list[dict[str, Any]]:
    path = repo / ".git" / "orchestra" / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def make_repo(root: Path, score: str, files: dict[str, str] | None = None) -> Path:
    """A git repository on main with orchestra.toml (committed) and files."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "orchestra.toml").write_text(score)
    for name, text in (files or {"README.md": "# e2e\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


# -- cleaning up what orchestra started --------------------------------------------------------------
def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def supervisors_of(repo: Path) -> list[int]:
    """Pids of run supervisors working for this repository (their cmdline names its state dir)."""
    state_dir = str(repo / ".git" / "orchestra")
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if SUPERVISOR_MODULE in cmd and state_dir in cmd:
                pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_fleet(repo: Path, timeout: float = 10.0) -> None:
    """Stop every supervisor of repo (they stop their agents) and kill agent process groups left over."""
    pids = supervisors_of(repo)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    runs_dir = repo / ".git" / "orchestra" / "runs"
    for state in runs_dir.glob("*/run.json") if runs_dir.is_dir() else []:
        try:
            record = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        pgid = record.get("agent_pgid")
        if pgid and _is_agent_of(pgid, record.get("worktree") or ""):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _is_agent_of(pid: int, worktree: str) -> bool:
    """Whether pid is an agent orchestra started in worktree (its environment says so)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"ORCHESTRA_WORKTREE={worktree}".encode() in environ
