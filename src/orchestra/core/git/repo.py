"""Find the repository orchestra works on and the places it keeps its own files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.canonical import sha256
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
        key = sha256(str(self.common_dir).encode()).hexdigest()[:8]
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
    when it has no commits.

    One git call answers in the usual case (every command, and the UI's first frame, starts here); only when
    it fails are the questions asked one by one, to say which of them failed."""
    path = path.resolve()
    if not path.exists():
        raise NotARepository(f"{path} does not exist.")
    where = ("rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir")
    found = git(path, *where, *(("--verify", "HEAD") if require_commits else ()), check=False).splitlines()
    if len(found) < 2 or (require_commits and len(found) != 3):
        _diagnose(path, where, require_commits)
    return Repository(root=_main_checkout(found[0], found[1]), common_dir=Path(found[1]))


def _main_checkout(toplevel: str, common_dir: str) -> Path:
    """The main checkout: from inside a linked worktree, the common dir's parent."""
    return Path(common_dir).parent if Path(common_dir).name == ".git" else Path(toplevel)


def _diagnose(path: Path, where: tuple[str, ...], require_commits: bool) -> None:
    """Raise the error that says why path is no repository orchestra can work in."""
    if not git_ok(path, "rev-parse", "--git-dir"):
        raise NotARepository(
            f"{path} is not inside a git repository.\n"
            "orchestra works in a git repository: run `git init` and make a first commit, "
            "or try `orchestra demo` to see it on a demo repository."
        )
    root = _main_checkout(*git(path, *where).splitlines())  # a bare repository fails here, with git's own words
    if require_commits and not git_ok(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        raise OrchestraError(
            f"The repository at {root} has no commits yet.\n"
            "Runs start from a commit: make a first commit (`git commit --allow-empty -m init`), then try again."
        )
    raise OrchestraError(f"git could not describe the repository at {path}.")
