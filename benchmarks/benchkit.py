"""What the benchmarks share: an isolated HOME, git and orchestra commands, and a UI on a pty."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
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
