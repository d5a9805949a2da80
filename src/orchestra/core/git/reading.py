"""A revision to read, not to work on: a temporary detached worktree of it, and the paths it tracks.

`orchestra spec draft` lets an agent read the target branch as it is committed, never the user's checkout
(which may hold uncommitted work the agent must not see, and must never be written). The worktree lives in
orchestra's own worktrees directory, is detached (no branch is created) and is removed, with git's record of
it, when the block ends, an interrupt included.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import file_lock
from orchestra.core.base.signals import interrupts_deferred
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.worktrees import add_worktree


@dataclass(frozen=True)
class ReadingTree:
    """A detached checkout of one commit: where its files are, and git's administrative directory for it."""

    path: Path
    gitdir: Path
    commit: str


@contextmanager
def reading_tree(repo: Repository, rev: str, name: str) -> Iterator[ReadingTree]:
    """A detached worktree of rev at <worktrees dir>/<name>, removed (with git's record of it) on leaving."""
    commit = repo.resolve(rev)
    path = repo.worktrees_dir / name
    if os.path.lexists(path):
        raise OrchestraError(f"{path} is already there; it was left as it is.")
    try:
        with interrupts_deferred():
            gitdir = add_worktree(repo, path, ["--detach"], commit)
        yield ReadingTree(path, gitdir, commit)
    finally:
        remove_reading_tree(repo, path)


def remove_reading_tree(repo: Repository, path: Path) -> None:
    """Remove a reading tree and git's record of it (Ctrl-C waits for it); nothing in it is anyone's work."""
    with interrupts_deferred(), file_lock(repo.state_dir / "worktree.lock"):
        if not git_ok(repo.root, "worktree", "remove", "--force", str(path)):
            shutil.rmtree(path, ignore_errors=True)
            git(repo.root, "worktree", "prune", check=False)


def tracked_paths(cwd: Path, rev: str) -> list[str]:
    """Every file path rev holds, sorted as git lists them."""
    listed = git(cwd, "ls-tree", "-r", "-z", "--name-only", "--full-tree", rev)
    return [path for path in listed.split("\0") if path]
