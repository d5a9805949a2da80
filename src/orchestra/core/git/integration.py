"""Several branches merged onto a target at once, with plumbing only: the integration candidate of a spec's parts.

Each part's commit is merged in turn onto what is merged so far (`git merge-tree --write-tree`: no worktree,
no index, only the trees that differ are read), so building the candidate costs a few git processes per
part however large the repository is. A part that conflicts is left out and its conflicting paths are
recorded, and the others are still merged, so one pass finds every conflict. The candidate is one commit
whose parents are the target and every part's commit (as git's own octopus merge makes), so the target holds
each part's history once it is merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestra.core.git.merge import merge_or_conflicts
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git


@dataclass(frozen=True)
class PartsMerge:
    """The parts merged onto the target: the tree (None when any part conflicted) and each conflicting part's
    paths, by its label."""

    tree: str | None
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)


def merge_parts(repo: Repository, target_commit: str, parts: list[tuple[str, str]],
                identity: dict[str, str]) -> PartsMerge:
    """Merge each (label, commit) of parts onto target_commit in turn; a part that conflicts is left out."""
    current, tree = target_commit, None
    conflicts: dict[str, tuple[str, ...]] = {}
    for label, commit in parts:
        merged, conflicted = merge_or_conflicts(repo, current, commit)
        if merged is None:
            conflicts[label] = tuple(conflicted)
            continue
        # A commit of its own (reachable from nothing) so the next part merges onto everything merged so far.
        current = git(repo.root, "commit-tree", merged, "-p", current, "-p", commit, "-m", f"integrate {label}",
                      env=identity)
        tree = merged
    return PartsMerge(None if conflicts else tree, conflicts)


def octopus_commit(repo: Repository, tree: str, parents: list[str], message: str, identity: dict[str, str]) -> str:
    """A commit of tree whose parents are parents (the target first, duplicates dropped), nothing pointing at it."""
    flags = [arg for parent in dict.fromkeys(parents) for arg in ("-p", parent)]
    return git(repo.root, "commit-tree", tree, *flags, "-m", message, env=identity)

