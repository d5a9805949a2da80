"""Removing a decided run's worktree, only when nothing in it would be lost.

Before a decision removes a worktree, what the agent or the conductor left is committed onto the run's
branch (snapshot.settle). What is then still only in the worktree is what git does not track: ignored
files and untracked build junk. Those are deleted only when they match the score's `disposable` globs
(dependency and build caches by default); anything else keeps the whole worktree, and the run says
which paths and why. A corrupted worktree is never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import file_lock
from orchestra.core.base.globs import matches_any
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.snapshot import changed_paths, head_ref, tip_of, working_tree_id
from orchestra.core.git.worktrees import RunTree

KEPT_PATHS_SHOWN = 20     # paths a kept worktree names (the count of the rest is given)
EXPAND_LIMIT = 2000       # files looked at inside an untracked directory before it is simply kept


@dataclass(frozen=True)
class Kept:
    """A worktree that was not removed, and why: what removing it would have lost."""

    path: str
    reason: str
    paths: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        shown = ", ".join(self.paths[:KEPT_PATHS_SHOWN])
        more = f" and {len(self.paths) - KEPT_PATHS_SHOWN} more" if len(self.paths) > KEPT_PATHS_SHOWN else ""
        return f"worktree {self.path} was kept: {self.reason}" + (f" ({shown}{more})" if shown else "")

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "reason": self.reason, "paths": list(self.paths)}


def leftovers(tree: RunTree) -> list[str]:
    """Files in the worktree that no commit holds: ignored ones and build junk (directories collapsed)."""
    out = tree.git("ls-files", "--others", "--directory", "-z")
    return [path for path in out.split("\0") if path]


def not_disposable(tree: RunTree, paths: Iterable[str], disposable: tuple[str, ...]) -> list[str]:
    """The paths that are not disposable; an untracked directory is looked into before it is kept whole."""
    kept = []
    for path in paths:
        if matches_any(disposable, path):
            continue
        if not path.endswith("/"):
            kept.append(path)
            continue
        inside = tree.git("ls-files", "--others", "-z", "--", path).split("\0")
        inside = [p for p in inside if p][:EXPAND_LIMIT + 1]
        if len(inside) > EXPAND_LIMIT or any(not matches_any(disposable, p) for p in inside):
            kept.append(path)
    return kept


def uncommitted(tree: RunTree) -> list[str]:
    """Paths whose content in the worktree no commit of the run's branch holds."""
    if head_ref(tree) == tree.branch_ref:
        changed = changed_paths(tree)
        if changed is not None:
            return changed
    if working_tree_id(tree) == tip_of(tree).tree:
        return []
    return changed_paths(tree) or ["(the worktree's index)"]


def would_keep(tree: RunTree, disposable: tuple[str, ...]) -> Kept | None:
    """Why removing the worktree would lose something (a Kept saying what), or None when nothing would be."""
    problem = tree.problem()
    if problem:
        return Kept(str(tree.path), f"{problem}; orchestra does not touch it")
    changed = uncommitted(tree)
    if changed:
        return Kept(str(tree.path), "it has uncommitted changes", tuple(changed))
    lost = not_disposable(tree, leftovers(tree), disposable)
    if lost:
        return Kept(str(tree.path), "it holds files no commit has (ignored or never committed) "
                                    "that are not disposable", tuple(lost))
    return None


def remove_worktree(repo: Repository, tree: RunTree, disposable: tuple[str, ...]) -> Kept | None:
    """Remove a run's worktree if nothing in it would be lost; else keep it and say what it holds."""
    if not tree.path.exists():
        git(repo.root, "worktree", "prune", check=False)
        return None
    kept = would_keep(tree, disposable)
    if kept is not None:
        return kept
    with file_lock(repo.state_dir / "worktree.lock"):
        if git_ok(repo.root, "worktree", "remove", "--force", str(tree.path)):
            return None
    raise OrchestraError(f"Could not remove worktree {tree.path}; it was left in place.")


