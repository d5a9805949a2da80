"""Merge a run's candidate into the target branch without ever touching work that is not committed.

A merge is planned first (the merged tree, the checks on the user's checkout, the merge commit as an
object that nothing points at yet) and applied after: the decision journal sits between the two, so
a crash either left the target as it was or moved it to exactly the planned commit.

A merge that would change nothing on the target (the candidate is in its history already, or merging
it leaves the target's tree as it is) is never made: an empty merge commit would claim a change that
did not happen. plan_merge refuses it with NothingToMerge, saying why.

A revert of an accept's merge is planned and applied the same way (plan_revert): the same checks on the
user's checkout, the same move of the target, so it too is all or nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import ActionRefused
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok


class NothingToMerge(ActionRefused):
    """The target already holds everything the candidate changes; why says how, advice what to do."""

    def __init__(self, why: str, advice: str = "") -> None:
        super().__init__(f"Nothing to merge: {why}." + (f" {advice}" if advice else ""))
        self.why = why


@dataclass(frozen=True)
class MergePlan:
    """A merge commit ready to become the target's tip, and where the target is checked out."""

    target: str
    target_before: str
    commit: str
    checkout: Path | None


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


CONFLICT_ADVICE = "Redirect the run to rebase onto the target, or resolve it by hand in its worktree."


def merged_tree(repo: Repository, target_commit: str, candidate: str,
                what: str = "The run's changes conflict with the target branch", advice: str = CONFLICT_ADVICE) -> str:
    """The tree of target merged with candidate; refuse, naming the files, when they conflict."""
    tree, conflicted = merge_or_conflicts(repo, target_commit, candidate)
    if tree is None:
        raise ActionRefused(f"{what} in: {', '.join(conflicted)}.\nNothing was changed. {advice}")
    return tree


def merge_or_conflicts(repo: Repository, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """(the tree of ours merged with theirs, []) or (None, the paths that conflict), written without a worktree."""
    lines = git(repo.root, "merge-tree", "--write-tree", "--name-only", "--no-messages",
                ours, theirs, check=False).splitlines()
    if not lines:
        raise ActionRefused("git could not compute the merge (is git 2.38 or newer installed?)")
    if len(lines) == 1 and len(lines[0]) in (40, 64):  # a clean merge prints its tree alone
        return lines[0], []
    return None, sorted(set(line for line in lines[1:] if line))


def changed_by_merge(repo: Repository, target_commit: str, tree: str) -> tuple[set[str], set[str]]:
    """(every path the merge touches, the paths it adds that the target does not track)."""
    out = git(repo.root, "diff", "--name-status", "--no-renames", "-z", target_commit, tree).split("\0")
    touched, added = set(), set()
    for status, path in zip(out[0::2], out[1::2]):
        touched.add(path)
        if status == "A":
            added.add(path)
    return touched, added


def overwritten_untracked(checkout: Path, added: set[str]) -> list[str]:
    """Files the merge would write over that the target does not track: untracked or ignored ones."""
    hit = set()
    for path in added:
        if os.path.lexists(checkout / path):
            hit.add(path)
        parent = Path(path).parent
        while parent != Path("."):  # a file where the merge needs a directory
            if os.path.lexists(checkout / parent) and not (checkout / parent).is_dir():
                hit.add(parent.as_posix())
            parent = parent.parent
    return sorted(hit)


def check_checkout(checkout: Path, touched: set[str], added: set[str], action: str = "accept") -> None:
    """Refuse when the checkout is mid-operation, or the merge (or revert) would touch work that is not
    committed."""
    gitdir = Path(git(checkout, "rev-parse", "--path-format=absolute", "--git-dir"))
    for marker in ("MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD", "REVERT_HEAD"):
        if (gitdir / marker).exists():
            raise ActionRefused(f"{checkout} is in the middle of a merge, rebase, cherry-pick or revert. "
                                f"Nothing was changed. Finish or abort it, then {action} again.")
    change = "merge" if action == "accept" else action
    overlap = sorted(dirty_paths(checkout) & touched)
    if overlap:
        raise ActionRefused(
            f"{checkout} has uncommitted changes in files this {change} would change: {', '.join(overlap)}.\n"
            f"Nothing was changed. Commit or stash them (`git stash`), then {action} again.")
    clobbered = overwritten_untracked(checkout, added)
    if clobbered:
        raise ActionRefused(
            f"{checkout} has files this {change} would overwrite that git does not track there (ignored or "
            f"untracked): {', '.join(clobbered)}.\nNothing was changed. Move them aside, then {action} again.")


def plan_merge(repo: Repository, target: str, candidate: str, message: str,
               identity: dict[str, str]) -> MergePlan:
    """Check that the merge can happen without losing anything, and write its commit (not yet on target)."""
    target_commit, target_tree = git(repo.root, "rev-parse", f"refs/heads/{target}^{{commit}}",
                                     f"refs/heads/{target}^{{tree}}").split()
    if git_ok(repo.root, "merge-base", "--is-ancestor", candidate, target_commit):
        raise NothingToMerge(f"{target} already contains this run's candidate {candidate[:10]}")
    tree = merged_tree(repo, target_commit, candidate)
    if tree == target_tree:
        raise NothingToMerge(f"merging this run would not change {target} (it holds these changes already)")
    touched, added = changed_by_merge(repo, target_commit, tree)
    checkout = checkout_of(repo, target)
    if checkout is not None:
        check_checkout(checkout, touched, added)
    commit = git(repo.root, "commit-tree", tree, "-p", target_commit, "-p", candidate, "-m", message, env=identity)
    return MergePlan(target=target, target_before=target_commit, commit=commit, checkout=checkout)


def plan_revert(repo: Repository, target: str, merge_commit: str, message: str,
                identity: dict[str, str]) -> MergePlan:
    """Check that undoing an accept's merge on target loses nothing, and write the revert commit (not yet on
    target).

    The revert is computed as a merge: a commit on top of the accept's merge that restores the tree from
    before it is merged into the target. What the target gained since is kept; a later change to the same
    lines conflicts, and the revert is refused naming the files, rather than undoing someone's work."""
    target_commit, target_tree = git(repo.root, "rev-parse", f"refs/heads/{target}^{{commit}}",
                                     f"refs/heads/{target}^{{tree}}").split()
    if not git_ok(repo.root, "merge-base", "--is-ancestor", merge_commit, target_commit):
        raise ActionRefused(f"{target} does not hold the merge {merge_commit[:10]} any more (it was reset or "
                            "rewritten since): there is nothing of it to revert. Nothing was changed.")
    undo = git(repo.root, "commit-tree", f"{merge_commit}^1^{{tree}}", "-p", merge_commit, "-m", "undo",
               env=identity)
    tree = merged_tree(repo, target_commit, undo, what="Undoing this merge conflicts with later changes to "
                       f"{target}", advice=f"Revert it by hand (`git revert -m 1 {merge_commit[:10]}`) and resolve "
                       "the conflict, or change the code forward.")
    if tree == target_tree:
        raise ActionRefused(f"Nothing to revert: {target} holds none of this merge's changes any more. "
                            "Nothing was changed.")
    touched, added = changed_by_merge(repo, target_commit, tree)
    checkout = checkout_of(repo, target)
    if checkout is not None:
        check_checkout(checkout, touched, added, action="revert")
    commit = git(repo.root, "commit-tree", tree, "-p", target_commit, "-m", message, env=identity)
    return MergePlan(target=target, target_before=target_commit, commit=commit, checkout=checkout)


def apply_merge(repo: Repository, plan: MergePlan, action: str = "accept") -> None:
    """Move the target (and its checkout) from the planned tip to the merge (or revert) commit, or refuse."""
    ref = f"refs/heads/{plan.target}"
    if plan.checkout is None:
        if not git_ok(repo.root, "update-ref", "-m", f"orchestra: {action}", ref, plan.commit, plan.target_before):
            raise ActionRefused(f"{plan.target} moved while the {action} was prepared. Nothing was changed; "
                                f"{action} again.")
        return
    done = git(plan.checkout, "merge", "--ff-only", "--quiet", "--no-verify", plan.commit, check=False)
    if git(plan.checkout, "rev-parse", "HEAD") != plan.commit:
        raise ActionRefused(f"git refused to update {plan.checkout}: {done or 'unknown reason'}. Nothing was changed.")


NOTES_REF = "refs/notes/orchestra"  # `git log --notes=orchestra` shows each accept's sign-off; pushing it is yours


def note_commit(repo: Repository, commit: str, text: str, identity: dict[str, str]) -> None:
    """Attach text to commit as its note under NOTES_REF, replacing any there (writing it again is harmless)."""
    git(repo.root, "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit, input=text, env=identity)


def landed(repo: Repository, target: str, commit: str) -> bool:
    """Whether the target branch holds commit (the merge of a decision happened)."""
    return git_ok(repo.root, "merge-base", "--is-ancestor", commit, f"refs/heads/{target}")
