"""Commit what is in a run's worktree onto the run's branch, and only ever onto that branch.

A snapshot is made with plumbing: the worktree's files are staged in a scratch index, written as a
tree, committed with `commit-tree` and the run's branch is moved with a compare-and-swap
`update-ref`. Nothing goes through the worktree's HEAD or `.git` file, so an agent that points them
elsewhere cannot make orchestra commit into the user's branches. Tracked files are always
committed; build junk is left out only when it is untracked.

When the agent left its branch (detached HEAD, another branch, a reset), every commit it made stays
reachable under refs/orchestra/runs/<run>/kept/, HEAD is put back on the run's branch, and the files
it left become the next snapshot: the candidate is what the worktree holds, and the review says what
happened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.worktrees import RunTree

# Untracked build artefacts a snapshot never commits, even when the repository does not ignore them.
# Tracked files under these paths are committed like any other.
JUNK_PATHSPECS = (
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/*.pyc",
    ":(exclude,glob)**/.pytest_cache/**",
    ":(exclude,glob)**/.mypy_cache/**",
    ":(exclude,glob)**/.ruff_cache/**",
    ":(exclude,glob)**/node_modules/**",
    # Aider's chat and input history and its tags cache (kept in the worktree for a redirect).
    ":(exclude,glob).aider*",
    ":(exclude,glob).aider*/**",
    ":(exclude,glob)**/.DS_Store",
)
KEPT_REFS = "refs/orchestra/runs"


@dataclass
class Settled:
    """What settling a worktree did: the snapshot commit (if one was needed) and what the agent did to HEAD."""

    commit: str | None = None
    escapes: list[dict[str, str]] = field(default_factory=list)


def branch_tip(tree: RunTree) -> str:
    return git(tree.path, "rev-parse", "--verify", f"{tree.branch_ref}^{{commit}}", env=tree.env())


@contextmanager
def staged(tree: RunTree, excludes: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """Stage the worktree's files in a scratch index; yield the tree id and the index file.

    The scratch index starts from the worktree's own (so unchanged files are not hashed again) or, when
    that is missing or unreadable, from the branch; the worktree's index is never touched here."""
    scratch = tree.gitdir / f"orchestra-index.{os.getpid()}.{id(tree)}"
    env = tree.env(GIT_INDEX_FILE=str(scratch))
    try:
        _seed_index(tree, scratch, env)
        git(tree.path, "add", "--update", "--", ".", env=env)
        git(tree.path, "add", "--all", "--", ".", *JUNK_PATHSPECS, *excludes, env=env)
        yield git(tree.path, "write-tree", env=env), scratch
    finally:
        scratch.unlink(missing_ok=True)


def _seed_index(tree: RunTree, scratch: Path, env: dict[str, str]) -> None:
    index = tree.gitdir / "index"
    if index.is_file() and not index.is_symlink():
        shutil.copy2(index, scratch)  # its mtime too: git tells racily-clean entries by it
        if git_ok(tree.path, "ls-files", "--", ".orchestra-no-such-path", env=env):  # reads the whole index
            return
    scratch.unlink(missing_ok=True)
    git(tree.path, "read-tree", tree.branch_ref, env=env)


def working_tree_id(tree: RunTree, excludes: tuple[str, ...] = ()) -> str:
    """The tree id the worktree's files would be committed as now (the worktree's index untouched)."""
    with staged(tree, excludes) as (tree_id, _index):
        return tree_id


def snapshot(tree: RunTree, identity: dict[str, str], message: str, excludes: tuple[str, ...] = ()) -> str | None:
    """Commit everything left in the worktree onto the run's branch; return the new commit or None."""
    tree.check()
    tip = branch_tip(tree)
    with staged(tree, excludes) as (tree_id, scratch):
        if tree_id == git(tree.path, "rev-parse", f"{tip}^{{tree}}", env=tree.env()):
            return None
        commit = git(tree.path, "commit-tree", tree_id, "-p", tip, "-m", message, env=tree.env(**identity))
        git(tree.path, "update-ref", "-m", "orchestra: snapshot", tree.branch_ref, commit, tip, env=tree.env())
        if head_ref(tree) == tree.branch_ref:
            os.replace(scratch, tree.gitdir / "index")  # the worktree's index agrees with its new HEAD
    return commit


def head_ref(tree: RunTree) -> str | None:
    """The ref the worktree's HEAD is attached to, None when it is detached."""
    return git(tree.path, "symbolic-ref", "--quiet", "HEAD", env=tree.env(), check=False) or None


def _reflog(tree: RunTree, ref: str) -> list[str]:
    out = git(tree.path, "reflog", "show", "--format=%H", ref, "--", env=tree.env(), check=False)
    return [line for line in out.splitlines() if len(line) == 40]


def secure_head(tree: RunTree, run_id: str, base: str) -> list[dict[str, str]]:
    """Keep every commit the agent made reachable, put HEAD back on the run's branch, say what happened."""
    tree.check()
    escapes: list[dict[str, str]] = []
    tip = branch_tip(tree)
    attached = head_ref(tree)
    head = git(tree.path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", env=tree.env(), check=False)
    if attached != tree.branch_ref:
        where = f"on branch {attached.removeprefix('refs/heads/')}" if attached else "detached"
        escapes.append({"what": f"the agent left its branch: HEAD was {where} at {head[:10] or '?'}; "
                                f"it is back on {tree.branch} and the files it left are the candidate"})
        git(tree.path, "symbolic-ref", "HEAD", tree.branch_ref, env=tree.env())
    seen = set(_reflog(tree, "HEAD") + _reflog(tree, tree.branch_ref) + ([head] if head else []))
    escapes += _keep_unreachable(tree, run_id, sorted(seen), tip, base)
    if not _is_ancestor(tree, base, tip):
        escapes.append({"what": f"the agent moved its branch back: {tree.branch} no longer contains the commit "
                                f"the run started from ({base[:10]})"})
    return escapes


def _is_ancestor(tree: RunTree, older: str, newer: str) -> bool:
    return git_ok(tree.path, "merge-base", "--is-ancestor", older, newer, env=tree.env())


def _keep_unreachable(tree: RunTree, run_id: str, commits: list[str], tip: str, base: str) -> list[dict[str, str]]:
    """Pin commits the branch no longer reaches (and the base never had) under the run's refs."""
    if not commits:
        return []
    lost = git(tree.path, "rev-list", *commits, "--not", tip, base, "--", env=tree.env(), check=False).split()
    tips = [commit for commit in commits if commit in set(lost)]
    if len(tips) > 1:
        tips = git(tree.path, "merge-base", "--independent", *tips, env=tree.env()).split()
    kept = []
    for commit in tips:
        ref = f"{KEPT_REFS}/{run_id}/kept/{commit[:12]}"
        git(tree.path, "update-ref", "-m", "orchestra: keep the agent's commit", ref, commit, env=tree.env())
        kept.append({"what": f"kept commit {commit[:10]}, which the run's branch no longer reaches, as {ref}",
                     "ref": ref, "commit": commit})
    return kept


def settle(tree: RunTree, run_id: str, base: str, identity: dict[str, str], message: str,
           excludes: tuple[str, ...] = ()) -> Settled:
    """Secure HEAD, then snapshot what the worktree holds: the one way a worktree becomes a candidate."""
    escapes = secure_head(tree, run_id, base)
    return Settled(commit=snapshot(tree, identity, message, excludes), escapes=escapes)
