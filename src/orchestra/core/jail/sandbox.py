"""bubblewrap: whether it works on this machine, and the command line that puts a run's process in it.

The sandbox is the whole system read-only, the user's home replaced by an empty one, no other
processes visible (a pid namespace, which also ends every process the agent started, daemons
included, when its command ends or is killed), optionally no network, and writable only:
- the run's worktree (its `.git` file read-only),
- the worktree's administrative directory in the common git dir (index, HEAD, its logs; not the
  files that link it to its repository),
- the run's own branch (a directory of refs holding that branch alone, and its reflog directory),
- the run's private directory: its home, its temporary directory and its own object store (git
  reads the repository's objects as alternates and writes new ones there; orchestra moves them into
  the repository, verified, after the agent),
- paths a CLI preset needs for its login and config.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from orchestra.core.jail.jail import Jail

PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SandboxStatus:
    """Whether bubblewrap can sandbox a process here; reason says why not, and what to do."""

    works: bool
    reason: str
    bwrap: str | None = None


@cache
def probe() -> SandboxStatus:
    """Start one real sandbox (once per process) to learn whether sandboxing works here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(False, "bubblewrap is not installed (apt install bubblewrap)")
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        return SandboxStatus(False, f"bubblewrap could not be started ({error})", bwrap)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        return SandboxStatus(False, f"bubblewrap cannot create a sandbox here ({why}); nested containers and "
                                    "AppArmor-restricted user namespaces prevent it", bwrap)
    return SandboxStatus(True, "bubblewrap works", bwrap)


def wrap(bwrap: str, jail: Jail, argv: list[str]) -> list[str]:
    """argv run inside the jail's sandbox (the environment is the caller's: bwrap passes it on)."""
    out = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not jail.network:
        out.append("--unshare-net")
    out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    out += ["--tmpfs", str(jail.user_home)]
    for path in jail.read:
        out += ["--ro-bind-try", str(path), str(path)]
    out += ["--ro-bind", str(jail.common_dir), str(jail.common_dir)]
    out += _writable(jail)
    for path in jail.write:
        out += ["--bind-try", str(path), str(path)]
    out += ["--chdir", str(jail.worktree), "--", *argv]
    return out


def _writable(jail: Jail) -> list[str]:
    """The binds that make exactly the run's own things writable, the links git trusts read-only."""
    out: list[str] = []
    for path in (jail.worktree, jail.gitdir, jail.ref_dir, jail.reflog_dir, jail.private):
        out += ["--bind", str(path), str(path)]
    for path in (jail.worktree / ".git", jail.gitdir / "gitdir", jail.gitdir / "commondir"):
        out += ["--ro-bind", str(path), str(path)]
    return out


def ensure_paths(jail: Jail) -> None:
    """Create what the sandbox binds and may not exist yet (a packed ref leaves no directory behind)."""
    for path in (jail.ref_dir, jail.reflog_dir, jail.home, jail.tmp, jail.objects / "info", jail.objects / "pack"):
        path.mkdir(parents=True, exist_ok=True)


def helper_paths() -> tuple[Path, ...]:
    """What a sandboxed process needs of orchestra itself (its Python and package), when under a home."""
    import sys

    import orchestra
    return (Path(sys.prefix), Path(sys.base_prefix), Path(orchestra.__file__).resolve().parent.parent)
