"""Run worktrees: created beside the user's checkout, and checked before orchestra trusts them.

orchestra never goes through a worktree's `.git` file: an agent can rewrite it to point anywhere (the
user's own repository included). Each run remembers the administrative directory git made for its
worktree (`<common dir>/worktrees/<name>`), and every git call orchestra makes on the worktree names
that directory and the worktree explicitly (RunTree.env). If the `.git` file, the administrative
directory or its links no longer agree, the worktree is corrupted: orchestra commits nothing
through it and keeps it for the conductor to look at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import file_lock
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok


class WorktreeCorrupted(OrchestraError):
    """A run's worktree no longer belongs to its run; orchestra commits nothing through it."""


@dataclass(frozen=True)
class RunTree:
    """A run's worktree as orchestra created it: its files, its administrative directory, its branch."""

    path: Path
    gitdir: Path
    branch: str
    common_dir: Path
    objects: Path | None = None  # the run's own object store (its jail writes there; see snapshot.adopt_objects)

    @property
    def branch_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment that makes git work on this worktree whatever its `.git` file says (and see the
        objects its jail wrote, until they are adopted)."""
        env = {"GIT_DIR": str(self.gitdir), "GIT_WORK_TREE": str(self.path)}
        if self.objects is not None and self.objects.is_dir():
            env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(self.objects)
        return {**env, **extra}

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        return git(self.path, *args, env=self.env(**(env or {})), check=check)

    def problem(self) -> str | None:
        """Why the worktree cannot be trusted any more, or None when it is intact."""
        if not self.path.is_dir():
            return f"its worktree {self.path} is missing"
        dotgit = self.path / ".git"
        if dotgit.is_symlink() or not dotgit.is_file():
            return f"its worktree's .git is no longer the file git wrote ({dotgit})"
        pointed = _gitdir_line(dotgit)
        if pointed is None or _resolve(self.path, pointed) != self.gitdir.resolve():
            return (f"its worktree's .git was changed to point at {pointed or 'nothing'} instead of its own "
                    f"administrative directory {self.gitdir}")
        back = _read(self.gitdir / "gitdir")
        if back is None or _resolve(self.gitdir, back) != dotgit.resolve():
            return f"git's record of the worktree ({self.gitdir / 'gitdir'}) no longer points back at it"
        common = _read(self.gitdir / "commondir")
        if common is None or _resolve(self.gitdir, common) != self.common_dir.resolve():
            return f"the worktree's administrative directory was redirected to another repository ({common})"
        return None

    def check(self) -> None:
        problem = self.problem()
        if problem:
            raise WorktreeCorrupted(problem)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _gitdir_line(dotgit: Path) -> str | None:
    text = _read(dotgit)
    if text is None or not text.startswith("gitdir:") or "\n" in text:
        return None
    return text[len("gitdir:"):].strip()


def _resolve(base: Path, value: str) -> Path:
    return (base / value).resolve() if not os.path.isabs(value) else Path(value).resolve()


def admin_dir_of(repo: Repository, path: Path) -> Path | None:
    """The administrative directory git keeps for the worktree at path, found from git's own records."""
    admin = repo.common_dir / "worktrees"
    if not admin.is_dir():
        return None
    wanted = (path / ".git").resolve()
    for entry in admin.iterdir():
        back = _read(entry / "gitdir")
        if back is not None and _resolve(entry, back) == wanted:
            return entry
    return None


def run_tree(repo: Repository, path: Path, branch: str, gitdir: str | None, run_id: str | None = None) -> RunTree:
    """The RunTree of a run (gitdir recorded at spawn; found from git's records for older runs)."""
    found = Path(gitdir) if gitdir else admin_dir_of(repo, path)
    objects = repo.jails_dir / run_id / "objects" if run_id else None
    # A run whose administrative directory cannot be found is corrupted: problem() says so.
    return RunTree(path=path, gitdir=found or repo.common_dir / "worktrees" / "(missing)", branch=branch,
                   common_dir=repo.common_dir, objects=objects)


def create_worktree(repo: Repository, path: Path, branch: str, base: str) -> RunTree:
    """Add a worktree at path on a new branch from base (or on the branch, if it is there and still at base: a run
    that waited for a slot); only git's metadata step is serialised."""
    waited = git(repo.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False) == base
    new = [] if waited else ["-b", branch]
    gitdir = add_worktree(repo, path, ["--no-checkout", *new], branch if waited else base)
    return RunTree(path=path, gitdir=gitdir, branch=branch, common_dir=repo.common_dir)


def add_worktree(repo: Repository, path: Path, options: list[str], start: str) -> Path:
    """`git worktree add OPTIONS path start`, only git's metadata step serialised; the worktree's administrative
    directory in the common git dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(repo.state_dir / "worktree.lock"):
        git(repo.root, "worktree", "add", "--quiet", *options, str(path), start)
    gitdir = admin_dir_of(repo, path)
    if gitdir is None:
        raise OrchestraError(f"git created the worktree {path} but keeps no record of it.")
    return gitdir


def populate_worktree(tree: RunTree) -> None:
    """Check out the files of a worktree created with --no-checkout."""
    tree.git("reset", "--quiet", "--hard", tree.branch_ref)


def agent_identity(agent: str) -> dict[str, str]:
    """Author and committer for an agent's commits: the agent, not the user."""
    name, email = f"{agent} (orchestra agent)", f"{agent}@agents.orchestra.invalid"
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def create_branch(repo: Repository, branch: str, base: str) -> None:
    """A run's branch without a worktree here (a run that waits for a slot, or works at another host)."""
    git(repo.root, "branch", "--no-track", branch, base)


def branch_exists(repo: Repository, branch: str) -> bool:
    return git_ok(repo.root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def git_rev(repo: Repository, rev: str) -> str:
    return git(repo.root, "rev-parse", "--verify", f"{rev}^{{commit}}")
