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

The common case costs little: HEAD and the reflogs are read from git's files, and a worktree with
nothing new (one `git status`) is not staged at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestra.core.base.errors import GitError
from orchestra.core.base.globs import matches_any
from orchestra.core.git.runner import git, git_bytes, git_ok
from orchestra.core.git.worktrees import RunTree

# Untracked build artefacts a snapshot never commits, even when the repository does not ignore them
# (tracked files under these paths are committed like any other), as pathspecs and as globs.
JUNK_GLOBS = ("__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "node_modules/",
              ".aider*", ".DS_Store", ".coverage", ".coverage.*")
# .aider*: Aider's chat and input history, kept for a redirect; .coverage*: coverage.py's data files
JUNK_PATHSPECS = (
    ":(exclude,glob)**/__pycache__/**", ":(exclude,glob)**/*.pyc", ":(exclude,glob)**/.pytest_cache/**",
    ":(exclude,glob)**/.mypy_cache/**", ":(exclude,glob)**/.ruff_cache/**", ":(exclude,glob)**/node_modules/**",
    ":(exclude,glob).aider*", ":(exclude,glob).aider*/**", ":(exclude,glob)**/.DS_Store",
    ":(exclude,glob)**/.coverage", ":(exclude,glob)**/.coverage.*",
)
KEPT_REFS = "refs/orchestra/runs"


@dataclass
class Settled:
    """What settling a worktree did: the snapshot commit (if one was needed) and what the agent did to HEAD."""

    commit: str | None = None
    escapes: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Tip:
    commit: str
    tree: str


def branch_tip(tree: RunTree) -> str:
    return tip_of(tree).commit


def tip_of(tree: RunTree) -> Tip:
    """The run branch's commit and its tree (one git call)."""
    out = git(tree.path, "rev-parse", f"{tree.branch_ref}^{{commit}}",
              f"{tree.branch_ref}^{{tree}}", env=tree.env()).split()
    if len(out) != 2:
        raise GitError(("rev-parse", tree.branch_ref), 1, f"unexpected answer: {out}")
    return Tip(out[0], out[1])


# -- staging ---------------------------------------------------------------------------------------

@contextmanager
def staged(tree: RunTree, keep_out: tuple[str, ...] = ()) -> Iterator[tuple[str, Path]]:
    """Stage the worktree's files in a scratch index; yield the tree id and the index file.

    The scratch index starts from the worktree's own (so unchanged files are not hashed again) or, when
    that is missing or unreadable, from the branch; the worktree's index is never touched here.
    keep_out: paths (relative) never committed, such as a gate's report file."""
    scratch = tree.gitdir / f"orchestra-index.{os.getpid()}.{id(tree)}"
    env = tree.env(GIT_INDEX_FILE=str(scratch))
    try:
        _seed_index(tree, scratch, env)
        git(tree.path, "add", "--update", "--", ".", env=env)
        git(tree.path, "add", "--all", "--", ".", *JUNK_PATHSPECS, *(f":(exclude){path}" for path in keep_out),
            env=env)
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


def working_tree_id(tree: RunTree, keep_out: tuple[str, ...] = ()) -> str:
    """The tree id the worktree's files would be committed as now (the worktree's index untouched)."""
    with staged(tree, keep_out) as (tree_id, _index):
        return tree_id


def changed_paths(tree: RunTree, keep_out: tuple[str, ...] = ()) -> list[str] | None:
    """What `git status` sees changed in the worktree against HEAD, untracked junk and keep_out left out;
    None when git cannot tell (an unreadable index, say): then only staging can."""
    try:
        out = tree.git("status", "--porcelain=v1", "-z", "--untracked-files=normal", "--no-renames")
    except GitError:
        return None
    changed = []
    for entry in out.split("\0"):
        if len(entry) < 4:
            continue
        path = entry[3:]
        if entry[:2] == "??" and (matches_any(JUNK_GLOBS, path) or path.rstrip("/") in keep_out):
            continue
        changed.append(path)
    return changed


# -- the run's own objects ----------------------------------------------------------------------------

def adopt_objects(tree: RunTree) -> int:
    """Move the objects the run's jail wrote (its own store) into the repository, each one verified: they
    are packed from the run's store and indexed into the repository's by `git index-pack`, which names
    every object by its content. Returns how many were adopted; GitError when they do not verify."""
    store = tree.objects
    if store is None or not store.is_dir() or not _holds_objects(store):
        return 0
    only_store = {"GIT_DIR": str(tree.common_dir), "GIT_OBJECT_DIRECTORY": str(store),
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES": ""}
    ids = git(tree.common_dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)",
              env=only_store).split()
    if ids:
        pack = git_bytes(tree.common_dir, "pack-objects", "--stdout", env=only_store,
                         input="\n".join(ids).encode() + b"\n")
        git_bytes(tree.common_dir, "index-pack", "--stdin", env={"GIT_DIR": str(tree.common_dir)}, input=pack)
    for entry in store.iterdir():
        if len(entry.name) == 2 and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    for pack_file in (store / "pack").glob("*"):
        pack_file.unlink(missing_ok=True)
    return len(ids)


def _holds_objects(store: Path) -> bool:
    return any(len(entry.name) == 2 and entry.is_dir() for entry in store.iterdir()) or \
        any((store / "pack").glob("*.pack"))


# -- snapshots -------------------------------------------------------------------------------------

def snapshot(tree: RunTree, identity: dict[str, str], message: str, keep_out: tuple[str, ...] = ()) -> str | None:
    """Commit everything left in the worktree onto the run's branch; return the new commit or None."""
    tree.check()
    adopt_objects(tree)
    tip = tip_of(tree)
    if head_ref(tree) == tree.branch_ref and changed_paths(tree, keep_out) == []:
        return None  # HEAD is the branch and git sees nothing new: nothing to stage
    with staged(tree, keep_out) as (tree_id, scratch):
        if tree_id == tip.tree:
            return None
        commit = git(tree.path, "commit-tree", tree_id, "-p", tip.commit, "-m", message, env=tree.env(**identity))
        git(tree.path, "update-ref", "-m", "orchestra: snapshot", tree.branch_ref, commit, tip.commit,
            env=tree.env())
        if head_ref(tree) == tree.branch_ref:
            os.replace(scratch, tree.gitdir / "index")  # the worktree's index agrees with its new HEAD
    return commit


def head_ref(tree: RunTree) -> str | None:
    """The ref the worktree's HEAD is attached to (read from its HEAD file), None when it is detached."""
    try:
        text = (tree.gitdir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text[len("ref:"):].strip() if text.startswith("ref:") else None


def head_commit(tree: RunTree) -> str | None:
    """The commit the worktree's HEAD names."""
    return git(tree.path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", env=tree.env(), check=False) or None


def _reflog(tree: RunTree, ref: str) -> list[str]:
    """Every commit a reflog names, read from git's log file (by `git reflog` when there is none)."""
    log = (tree.gitdir if ref == "HEAD" else tree.common_dir) / "logs" / ref
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        out = git(tree.path, "reflog", "show", "--format=%H", ref, "--", env=tree.env(), check=False)
        return [line for line in out.splitlines() if len(line) == 40]
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(" ", 2)
        found += [sha for sha in parts[:2] if len(sha) in (40, 64) and sha.strip("0")]
    return found


def secure_head(tree: RunTree, run_id: str, base: str) -> list[dict[str, str]]:
    """Keep every commit the agent made reachable, put HEAD back on the run's branch, say what happened."""
    tree.check()
    escapes: list[dict[str, str]] = []
    tip = branch_tip(tree)
    attached = head_ref(tree)
    head = None if attached == tree.branch_ref else head_commit(tree)
    if attached != tree.branch_ref:
        where = f"on branch {attached.removeprefix('refs/heads/')}" if attached else "detached"
        escapes.append({"what": f"the agent left its branch: HEAD was {where} at {(head or '?')[:10]}; "
                                f"it is back on {tree.branch} and the files it left are the candidate"})
        git(tree.path, "symbolic-ref", "HEAD", tree.branch_ref, env=tree.env())
    seen = set(_reflog(tree, "HEAD") + _reflog(tree, tree.branch_ref) + ([head] if head else [])) - {tip, base}
    escapes += _keep_unreachable(tree, run_id, sorted(seen), tip, base)
    if not git_ok(tree.path, "merge-base", "--is-ancestor", base, tip, env=tree.env()):
        escapes.append({"what": f"the agent moved its branch back: {tree.branch} no longer contains the commit "
                                f"the run started from ({base[:10]})"})
    return escapes


def _keep_unreachable(tree: RunTree, run_id: str, commits: list[str], tip: str, base: str) -> list[dict[str, str]]:
    """Pin commits the branch no longer reaches (and the base never had) under the run's refs."""
    if not commits:
        return []
    lost = set(git(tree.path, "rev-list", *commits, "--not", tip, base, "--", env=tree.env(), check=False).split())
    tips = [commit for commit in commits if commit in lost]
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
           keep_out: tuple[str, ...] = ()) -> Settled:
    """Adopt the run's own objects, secure HEAD, then snapshot what the worktree holds: the one way a
    worktree becomes a candidate."""
    tree.check()
    adopt_objects(tree)
    escapes = secure_head(tree, run_id, base)
    return Settled(commit=snapshot(tree, identity, message, keep_out), escapes=escapes)
