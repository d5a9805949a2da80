"""bubblewrap: whether it works on this machine, and the command line that puts a run's process in it.

The sandbox is the whole system read-only, the user's home replaced by an empty one, the repository's
git directory shown read-only without orchestra's state (writes there are discarded), no other
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

import os
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
    named = os.environ.get("ORCHESTRA_BWRAP")  # another bubblewrap, or a path that does not exist to go without
    bwrap = shutil.which(named) if named else shutil.which("bwrap")
    if bwrap is None:
        where = f" at ORCHESTRA_BWRAP={named}" if named else ""
        return SandboxStatus(False, f"bubblewrap is not installed{where} (apt install bubblewrap)")
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
    out += _common_dir(jail)
    out += _writable(jail)
    for path in jail.write:
        out += ["--bind-try", str(path), str(path)]
    out += ["--chdir", str(jail.worktree), "--", *argv]
    return out


def _writable(jail: Jail) -> list[str]:
    """The binds that make exactly the run's own things writable, the links git trusts read-only."""
    out: list[str] = []
    for path in (jail.worktree, jail.gitdir, jail.ref_dir, jail.reflog_dir):
        out += ["--ro-bind" if jail.read_only else "--bind", str(path), str(path)]
    out += ["--bind", str(jail.private), str(jail.private)]
    for path in (jail.worktree / ".git", jail.gitdir / "gitdir", jail.gitdir / "commondir"):
        out += ["--ro-bind", str(path), str(path)]
    return out


def _common_dir(jail: Jail) -> list[str]:
    """The repository's git directory as the sandbox shows it: an empty, writable directory (what is
    written there is lost with the sandbox) holding its entries read-only, its config as a link to the
    run's own copy (tools that rewrite the config, as Aider does, replace the link), and not orchestra's
    own state (runs, logs, the ledger)."""
    common = jail.common_dir
    out = ["--tmpfs", str(common)]
    for entry in sorted(common.iterdir()):
        if entry.name not in ("config", "orchestra"):
            out += ["--ro-bind", str(entry), str(entry)]
    return out + ["--symlink", str(jail.config_copy), str(common / "config")]


def ensure_paths(jail: Jail) -> None:
    """Create what the sandbox binds and may not exist yet (a packed ref leaves no directory behind), and
    refresh the run's copy of the repository's config."""
    for path in (jail.ref_dir, jail.reflog_dir, jail.home, jail.tmp, jail.objects / "info", jail.objects / "pack"):
        path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(jail.common_dir / "config", jail.config_copy)


def helper_paths() -> tuple[Path, ...]:
    """What a sandboxed process needs of orchestra itself (its Python and package), when under a home."""
    import sys

    import orchestra
    return (Path(sys.prefix), Path(sys.base_prefix), Path(orchestra.__file__).resolve().parent.parent)
