"""A run's jail: what its agent, gates and setup commands may see and change, described as data.

The same Jail is used whether or not the machine can sandbox: the environment (environment.py) and
the private home, temporary directory and object store apply either way; the file system and process
boundary (sandbox.py) only where bubblewrap works. Where it does not, `mode` says so and why, and
the run, `runs --json`, the ledger and doctor say it plainly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Jail:
    """Where one run's processes live."""

    run_id: str
    worktree: Path
    gitdir: Path           # the worktree's administrative directory (<common>/worktrees/<name>)
    common_dir: Path
    branch: str
    private: Path          # the run's own directory outside the repository: home/, tmp/, objects/
    user_home: Path        # hidden in the sandbox
    network: bool = True
    read: tuple[Path, ...] = ()    # read-only in the sandbox besides the system (under the hidden home)
    write: tuple[Path, ...] = ()   # writable besides the run's own (a CLI's login and config)
    sandboxed: bool = False        # whether processes are started inside bubblewrap
    reason: str = ""               # why not, when they are not
    extra_env: dict[str, str] = field(default_factory=dict)
    # A reviewer's jail: the worktree, its git admin dir and the run's refs are shown read-only; only its
    # private home and tmp are writable.
    read_only: bool = False

    @property
    def home(self) -> Path:
        return self.private / "home"

    @property
    def tmp(self) -> Path:
        return self.private / "tmp"

    @property
    def objects(self) -> Path:
        """The run's own object store: git writes new objects here, reads the repository's as alternates."""
        return self.private / "objects"

    @property
    def config_copy(self) -> Path:
        """What the sandbox shows as the repository's config: a copy, so writing it changes nothing outside."""
        return self.private / "git-config"

    @property
    def ref_dir(self) -> Path:
        """The directory that holds the run's branch ref and nothing else."""
        return self.common_dir / "refs" / "heads" / Path(self.branch).parent

    @property
    def reflog_dir(self) -> Path:
        return self.common_dir / "logs" / "refs" / "heads" / Path(self.branch).parent

    def git_env(self) -> dict[str, str]:
        """What makes git inside the jail write objects to the run's store and never run maintenance."""
        return {"GIT_OBJECT_DIRECTORY": str(self.objects),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.common_dir / "objects"),
                "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
                "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false"}

    def describe(self) -> dict[str, object]:
        """What runs --json and the ledger say about it."""
        return {"sandboxed": self.sandboxed, "network": self.network, "why_not": self.reason or None}


def home_dir() -> Path:
    return Path(os.path.expanduser("~")).resolve()
