"""Merge a run's candidate into the target branch without ever touching uncommitted work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import ActionRefused
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.repo import Repository


@dataclass(frozen=True)
class MergeResult:
    commit: str
    target_before: str


def checkout_of(repo: Repository, branch: str) -> Path | None:
    """The worktree that has branch checked out, if any."""
    current: Path | None = None
    for line in git(repo.root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree "):])
        elif line == f"branch refs/heads/{branch}":
            return current
    return None


def dirty_paths(checkout: Path) -> set[str]:
    """Paths with staged, unstaged or untracked changes in a checkout."""
    out = git(checkout, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    paths, fields = set(), out.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        if len(entry) > 3:
            paths.add(entry[3:])
            if entry[0] in "RC":  # a rename's source follows as its own field
                i += 1
                paths.add(fields[i])
        i += 1
    return paths


def merged_tree(repo: Repository, target_commit: str, candidate: str) -> str:
    """The tree of target merged with candidate; refuse, naming the files, when they conflict."""
    out = git(repo.root, "merge-tree", "--write-tree", "--name-only", "--no-messages",
              target_commit, candidate, check=False)
    lines = out.splitlines()
    if not lines:
        raise ActionRefused("git could not compute the merge (is git 2.38 or newer installed?)")
    if git_ok(repo.root, "cat-file", "-e", f"{lines[0]}^{{tree}}") and len(lines) == 1:
        return lines[0]
    conflicted = sorted(set(line for line in lines[1:] if line))
    raise ActionRefused(
        "The run's changes conflict with the target branch in: " + ", ".join(conflicted) + ".\n"
        "Nothing was changed. Redirect the run to rebase onto the target, or resolve it by hand in its worktree.")


def check_checkout(checkout: Path, touched: set[str], target: str) -> None:
    """Refuse when the checkout of target is mid-operation or has uncommitted changes the merge touches."""
    gitdir = Path(git(checkout, "rev-parse", "--path-format=absolute", "--git-dir"))
    for marker in ("MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD"):
        if (gitdir / marker).exists():
            raise ActionRefused(f"{checkout} is in the middle of a merge, rebase or cherry-pick. "
                                "Nothing was changed. Finish or abort it, then accept again.")
    overlap = sorted(dirty_paths(checkout) & touched)
    if overlap:
        raise ActionRefused(
            f"{checkout} has uncommitted changes in files this merge would change: {', '.join(overlap)}.\n"
            f"Nothing was changed. Commit or stash them (`git stash`), then accept again.")


def merge_candidate(repo: Repository, target: str, candidate: str, message: str,
                    identity: dict[str, str]) -> MergeResult:
    """Record a merge commit of candidate into target and move target (and its checkout) to it."""
    target_commit = git(repo.root, "rev-parse", "--verify", f"refs/heads/{target}^{{commit}}")
    tree = merged_tree(repo, target_commit, candidate)
    # Without rename detection, so a rename's source counts as touched too.
    touched = set(git(repo.root, "diff", "--name-only", "--no-renames", "-z", target_commit, tree).split("\0")) - {""}
    checkout = checkout_of(repo, target)
    if checkout is not None:
        check_checkout(checkout, touched, target)
    commit = git(repo.root, "commit-tree", tree, "-p", target_commit, "-p", candidate, "-m", message, env=identity)
    if checkout is None:
        git(repo.root, "update-ref", "-m", "orchestra: accept", f"refs/heads/{target}", commit, target_commit)
    else:
        done = git(checkout, "merge", "--ff-only", "--quiet", "--no-verify", commit, check=False,
                   env=identity)
        if git(checkout, "rev-parse", "HEAD") != commit:
            raise ActionRefused(f"git refused to update {checkout}: {done or 'unknown reason'}. Nothing was changed.")
    return MergeResult(commit=commit, target_before=target_commit)
