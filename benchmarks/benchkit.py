"""What the benchmarks share: an isolated HOME, git and orchestra commands, and a UI on a pty."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

ORCHESTRA = Path(sys.executable).parent / "orchestra"


def isolate(base: Path, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> None:
    """Point HOME, the XDG dirs and git's global config at base (for this process and its children)."""
    home = base / "home"
    for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                      ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(home / sub)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Bench Conductor\n\temail = bench@example.test\n"
                         "[init]\n\tdefaultBranch = main\n")
    os.environ.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
                      TERM="xterm-256color", LANG="C.UTF-8", **(env or {}))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "NO_COLOR", "TMUX", *drop):
        os.environ.pop(name, None)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit_quick_fleet(path: Path, runs: int, command: Callable[[int], str], intent: str) -> Path:
    """Write the score of runs quick shell agents q1 … qN (agent n runs command(n)) and one spec "work" naming
    them all with one cheap check, and commit everything in the repository at path."""
    agents = "".join(f'[[agents]]\nname = "q{n}"\nkind = "shell"\ncommand = "{command(n)}"\n\n'
                     for n in range(1, runs + 1))
    names = ", ".join(f'"q{n}"' for n in range(1, runs + 1))
    (path / "orchestra.toml").write_text(f'{agents}[[specs]]\nid = "work"\nintent = "{intent}"\n'
                                         f'verify = [{{ name = "check", command = "true" }}]\nagents = [{names}]\n')
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def score_repo(base: Path, score: str) -> Path:
    """A new repository base/repo on main whose one commit holds score as its orchestra.toml."""
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "orchestra.toml").write_text(score)
    (repo / "README.md").write_text("bench\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "init")
    return repo


def cli(repo: Path, *args: str, timeout: float = 120) -> str:
    done = subprocess.run([str(ORCHESTRA), *args], cwd=repo, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"orchestra {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def runs(repo: Path) -> dict[str, dict]:
    return {run["id"]: run for run in json.loads(cli(repo, "runs", "--json"))}


def spawn_on_pty(argv: list[str], cwd: Path, columns: int, rows: int) -> tuple[subprocess.Popen, int]:
    """Start argv on a new pty of columns x rows as its controlling terminal; the process and the master fd."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    return proc, master


class PtyUI:
    """A program (the orchestra UI) on a pty of columns x rows whose output this process reads: it counts
    every byte (`total`), keeps the last `keep` bytes (`output`) and when the first one came."""

    def __init__(self, argv: list[str], cwd: Path, columns: int, rows: int, keep: int = 1 << 22) -> None:
        self.started = time.perf_counter()
        self.proc, self.master = spawn_on_pty(argv, cwd, columns, rows)
        self.output, self.total, self.keep = bytearray(), 0, keep
        self.first_byte: float | None = None

    def read(self, seconds: float, until: bytes | list[bytes] | re.Pattern | None = None) -> float | None:
        """Read for up to seconds; with until (all of a list, or a pattern), stop once it is in the output
        and return the time since start; None when it did not come (or the program exited)."""
        wanted = [until] if isinstance(until, bytes) else until
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:
                return None  # the program exited
            if not chunk:
                return None
            if self.first_byte is None:
                self.first_byte = time.perf_counter() - self.started
            self.total += len(chunk)
            self.output += chunk
            del self.output[:-self.keep]
            if self._found(wanted):
                return time.perf_counter() - self.started
        return None

    def _found(self, wanted: list[bytes] | re.Pattern | None) -> bool:
        if isinstance(wanted, re.Pattern):
            return wanted.search(self.output) is not None
        return bool(wanted) and all(w in self.output for w in wanted)

    def read_until_quiet(self, quiet: float = 0.3, limit: float = 5.0) -> None:
        """Read until no output came for quiet seconds (or limit passed)."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            before = self.total
            self.read(quiet)
            if self.total == before:
                return

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        """Quit with q; kill the program if it does not exit (an orchestra UI's runs go on either way)."""
        if self.proc.poll() is None:
            try:
                self.press(b"q")
            except OSError:
                pass
            deadline = time.monotonic() + 5
            while self.proc.poll() is None and time.monotonic() < deadline:
                self.read(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc.wait()
        os.close(self.master)
