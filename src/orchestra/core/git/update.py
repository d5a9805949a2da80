"""Bring a run's branch up to date with its target (rebase or merge) in its worktree, all or nothing.

The update runs git's own rebase or merge in the run's worktree (through its administrative
directory, as every orchestra git call on a worktree does). A conflict is never left half done: the
rebase or merge is aborted and the worktree checked to be exactly as before (same HEAD, clean, nothing
in progress); the conflicted files are returned so the caller can say which.

What a rebase replaces stays reachable: the run's old head is pinned under
refs/orchestra/runs/<run>/before-update/. The worktree's HEAD reflog and the branch's reflog are
then cut back to what they held before the update, or emptied after a rebase, because the next settle
reads them to find commits *the agent* dropped: the commits orchestra itself rewrote (pinned above)
must not be reported as the agent's doing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.errors import ActionRefused, GitError
from orchestra.core.base.faults import declare, fault_point
from orchestra.core.git.merge import overwritten_untracked
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.snapshot import KEPT_REFS, branch_tip, head_ref
from orchestra.core.git.worktrees import RunTree

MODES = ("rebase", "merge")
CONFLICTED = declare("update.conflicted")  # git stopped on a conflict; nothing aborted it yet
# The marker git leaves while an operation is under way, and the command that aborts it.
IN_PROGRESS = {"rebase-merge": "rebase", "rebase-apply": "rebase", "MERGE_HEAD": "merge",
               "CHERRY_PICK_HEAD": "cherry-pick", "REVERT_HEAD": "revert"}
# What a user's config must not add to orchestra's own rebase or merge.
_QUIET_CONFIG = ("-c", "rebase.autoStash=false", "-c", "rebase.autoSquash=false", "-c", "rebase.updateRefs=false",
                 "-c", "merge.autoStash=false", "-c", "rerere.enabled=false")


@dataclass
class Updated:
    """What an update did: the run's head before and after; conflicted files when it could not be done."""

    head_before: str
    head_after: str | None = None
    conflicted: list[str] = field(default_factory=list)
    kept_ref: str | None = None  # where a rebase pinned the commits it replaced

    @property
    def changed(self) -> bool:
        return self.head_after is not None and self.head_after != self.head_before


def behind_count(cwd: Path, base: str, target_commit: str) -> int:
    """How many commits target_commit has that base does not (`git rev-list --count base..target`)."""
    return int(git(cwd, "rev-list", "--count", f"{base}..{target_commit}") or 0)


def target_commit(repo: Repository, target: str) -> str:
    return git(repo.root, "rev-parse", "--verify", f"refs/heads/{target}^{{commit}}")


def target_ref_file(repo: Repository, target: str) -> Path:
    """The loose ref file git rewrites whenever the target branch moves (watched to notice it)."""
    return repo.common_dir / "refs" / "heads" / target


def in_progress(tree: RunTree) -> str | None:
    """The rebase, merge, cherry-pick or revert under way in the worktree (the command's name), or None."""
    return next((command for marker, command in IN_PROGRESS.items() if (tree.gitdir / marker).exists()), None)


def abort_in_progress(tree: RunTree) -> None:
    """Abort whatever rebase, merge, cherry-pick or revert is under way in the worktree."""
    command = in_progress(tree)
    if command is None:
        return
    tree.git(command, "--abort", check=False)
    if in_progress(tree) == command:  # an abort git refused (a damaged state): drop the state, keep the files
        tree.git(command, "--quit", check=False)


def check_updatable(tree: RunTree, target: str) -> None:
    """Refuse, changing nothing, when the worktree has changes git would carry into or lose in an update."""
    tree.check()
    command = in_progress(tree)
    if command is not None:
        raise ActionRefused(f"{tree.path} is in the middle of a {command}; nothing was changed. "
                            "Finish or abort it in a shell (o), then update again.")
    if head_ref(tree) != tree.branch_ref:
        raise ActionRefused(f"{tree.path} is not on its run's branch {tree.branch}; nothing was changed.")
    dirty = tree.git("status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise ActionRefused(f"{tree.path} has changes that are not committed; nothing was changed.")
    added = tree.git("diff", "--name-only", "--diff-filter=A", "-z", "HEAD", target).split("\0")
    clobbered = overwritten_untracked(tree.path, {path for path in added if path})
    if clobbered:
        raise ActionRefused(f"{target[:10]} adds files the worktree holds untracked or ignored: "
                            f"{', '.join(clobbered)}. Nothing was changed; move them aside, then update again.")


def update_branch(tree: RunTree, run_id: str, target: str, mode: str, identity: dict[str, str],
                  message: str) -> Updated:
    """Rebase the run's branch onto target, or merge target into it, in its worktree; on a conflict abort
    and return the conflicted files with the worktree as it was."""
    check_updatable(tree, target)
    before = Updated(head_before=branch_tip(tree))
    logs = reflog_sizes(tree)
    if git_ok(tree.path, "merge-base", "--is-ancestor", target, before.head_before, env=tree.env()):
        before.head_after = before.head_before  # the branch holds the target already
        return before
    done = _attempt(tree, target, mode, identity, message)
    if done:
        return _finish(tree, run_id, before, mode)
    before.conflicted = conflicted_paths(tree)
    fault_point(CONFLICTED)
    abort_in_progress(tree)
    cut_reflogs(logs)  # what the failed attempt logged is orchestra's, not the agent's
    _check_restored(tree, before.head_before)
    if not before.conflicted:
        raise ActionRefused(f"git could not update {tree.path}: {done.stderr.strip() or 'unknown reason'}. "
                            "Nothing was changed.")
    return before


class _Attempt:
    def __init__(self, ok: bool, stderr: str) -> None:
        self.ok, self.stderr = ok, stderr

    def __bool__(self) -> bool:
        return self.ok


def _attempt(tree: RunTree, target: str, mode: str, identity: dict[str, str], message: str) -> _Attempt:
    if mode == "rebase":
        # The agent stays the author of its commits; the conductor who asked commits the rewritten ones.
        env = {key: value for key, value in identity.items() if key.startswith("GIT_COMMITTER_")}
        args = ("rebase", "--quiet", "--no-autostash", "--no-autosquash", "--no-update-refs", target)
    else:
        env = identity
        args = ("merge", "--quiet", "--no-edit", "--no-autostash", "--ff", "-m", message, target)
    try:
        tree.git(*_QUIET_CONFIG, *args, env=env)
    except GitError as error:
        return _Attempt(False, error.stderr)
    return _Attempt(True, "")


def conflicted_paths(tree: RunTree) -> list[str]:
    """The files a stopped rebase or merge left unmerged."""
    out = tree.git("diff", "--name-only", "--diff-filter=U", "-z", check=False)
    return sorted({path for path in out.split("\0") if path})


def _finish(tree: RunTree, run_id: str, outcome: Updated, mode: str) -> Updated:
    outcome.head_after = branch_tip(tree)
    if mode == "rebase" and outcome.head_after != outcome.head_before:
        outcome.kept_ref = pin_replaced(tree, run_id, outcome.head_before)
    return outcome


def pin_replaced(tree: RunTree, run_id: str, head_before: str) -> str:
    """Keep the commits a rebase replaced reachable, and empty the reflogs that name them (see above)."""
    ref = f"{KEPT_REFS}/{run_id}/before-update/{head_before[:12]}"
    tree.git("update-ref", "-m", "orchestra: the run's head before an update", ref, head_before)
    cut_reflogs({path: 0 for path in reflog_sizes(tree)})  # every commit they name is pinned or on the branch
    return ref


def _check_restored(tree: RunTree, head: str) -> None:
    """Raise unless the worktree is back on its branch at head, clean, with nothing in progress."""
    problems = []
    if in_progress(tree):
        problems.append(f"a {in_progress(tree)} is still in progress")
    if head_ref(tree) != tree.branch_ref or branch_tip(tree) != head:
        problems.append(f"HEAD is not back on {tree.branch} at {head[:10]}")
    if tree.git("status", "--porcelain", "--untracked-files=no"):
        problems.append("the worktree has changes")
    if problems:
        raise ActionRefused(f"The update of {tree.path} could not be undone cleanly: {'; '.join(problems)}. "
                            f"Open a shell there (o) and run `git status`.")


def reflog_sizes(tree: RunTree) -> dict[Path, int]:
    """The sizes of the worktree's HEAD reflog and its branch's reflog (to cut them back to)."""
    paths = (tree.gitdir / "logs" / "HEAD", tree.common_dir / "logs" / tree.branch_ref)
    return {path: path.stat().st_size if path.exists() else 0 for path in paths}


def cut_reflogs(sizes: dict[Path, int]) -> None:
    """Cut each reflog back to a size it had: drop only what was logged since."""
    for path, size in sizes.items():
        if path.exists() and path.stat().st_size > size:
            with open(path, "r+b") as log:
                log.truncate(size)
                os.fsync(log.fileno())


def finished_update(tree: RunTree, head_before: str, target: str) -> bool:
    """Whether an update interrupted after git finished it left the branch moved onto target."""
    tip = branch_tip(tree)
    return tip != head_before and git_ok(tree.path, "merge-base", "--is-ancestor", target, tip, env=tree.env())
