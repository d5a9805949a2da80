"""Find the repository orchestra works on and the places it keeps its own files."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import NotARepository, OrchestraError
from orchestra.core.git.runner import git, git_ok


def data_home() -> Path:
    """The XDG data directory orchestra owns."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "orchestra"


@dataclass(frozen=True)
class Repository:
    """A git repository: its main checkout, its common git dir, and orchestra's places in both."""

    root: Path
    common_dir: Path

    @property
    def state_dir(self) -> Path:
        """Run state, event logs and the ledger: shared by every worktree, never committed."""
        return self.common_dir / "orchestra"

    @property
    def worktrees_dir(self) -> Path:
        """Where run worktrees live: outside the user's checkout, in a directory orchestra owns."""
        key = hashlib.sha256(str(self.common_dir).encode()).hexdigest()[:8]
        return data_home() / "worktrees" / f"{self.root.name}-{key}"

    @property
    def jails_dir(self) -> Path:
        """Each run's private home, temporary directory and object store: beside the worktrees."""
        return self.worktrees_dir.parent.parent / "jails" / self.worktrees_dir.name

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.jsonl"

    @property
    def score_path(self) -> Path:
        return self.root / "orchestra.toml"

    def current_branch(self) -> str | None:
        """The branch checked out in the main checkout, or None when HEAD is detached."""
        name = git(self.root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return name or None

    def resolve(self, rev: str) -> str:
        """The commit id rev names."""
        return git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def open_repository(path: Path, require_commits: bool = True) -> Repository:
    """The repository containing path; raise a clear error when there is none or (unless not required)
    when it has no commits."""
    path = path.resolve()
    if not path.exists():
        raise NotARepository(f"{path} does not exist.")
    if not git_ok(path, "rev-parse", "--git-dir"):
        raise NotARepository(
            f"{path} is not inside a git repository.\n"
            "orchestra works in a git repository: run `git init` and make a first commit, "
            "or try `orchestra demo` to see it on a demo repository."
        )
    top = git(path, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir")
    toplevel, common = top.splitlines()
    common_dir = Path(common)
    # From inside a linked worktree, the main checkout is the common dir's parent.
    root = common_dir.parent if common_dir.name == ".git" else Path(toplevel)
    if require_commits and not git_ok(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        raise OrchestraError(
            f"The repository at {root} has no commits yet.\n"
            "Runs start from a commit: make a first commit (`git commit --allow-empty -m init`), then try again."
        )
    return Repository(root=root, common_dir=common_dir)
