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

The common case costs little: HEAD and the reflogs are read from git's files, a worktree with
nothing new (one `git status`) is not staged at all, and one with a few changes has only those paths
staged (the worktree is walked once, by `git status`, however many files it holds).
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
# Up to this many changed paths are staged by name; more, and the whole worktree is staged (one walk).
LISTED_PATHS = 256


@dataclass
class Settled:
    """What settling a worktree did: the snapshot commit (if one was needed) and what the agent did to HEAD."""

    commit: str | None = None
    escapes: list[dict[str, str]] = field(default_factory=list)
    tip: str | None = None  # the run branch's commit once settled (so callers need not ask git again)


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

@dataclass(frozen=True)
class Changes:
    """What `git status` saw changed in a worktree: tracked paths, and untracked files (junk and kept-out
    files left out)."""

    tracked: list[str]
    untracked: list[str]

    @property
    def paths(self) -> list[str]:
        return self.tracked + self.untracked


@contextmanager
def staged(tree: RunTree, keep_out: tuple[str, ...] = (),
           only: Changes | None = None) -> Iterator[tuple[str, Path]]:
    """Stage the worktree's files in a scratch index; yield the tree id and the index file.

    The scratch index starts from the worktree's own (so unchanged files are not hashed again) or, when
    that is missing or unreadable, from the branch; the worktree's index is never touched here.
    keep_out: paths (relative) never committed, such as a gate's report file. only: the paths `git status`
    saw changed against that index (see changed_paths); given, only they are staged."""
    scratch = tree.gitdir / f"orchestra-index.{os.getpid()}.{id(tree)}"
    env = tree.env(GIT_INDEX_FILE=str(scratch))
    excluded = (*JUNK_PATHSPECS, *(f":(exclude){path}" for path in keep_out))
    try:
        seeded = _seed_index(tree, scratch, env)
        if seeded and only is not None and len(only.paths) <= LISTED_PATHS:
            _stage_named(tree, only, env)
        else:
            git(tree.path, "add", "--update", "--", ".", env=env)
            git(tree.path, "add", "--all", "--", ".", *excluded, env=env)
        yield git(tree.path, "write-tree", env=env), scratch
    finally:
        scratch.unlink(missing_ok=True)


def _stage_named(tree: RunTree, changes: Changes, env: dict[str, str]) -> None:
    """Stage just the changed paths: tracked ones whatever their name (as `add --update` would), untracked
    ones unless junk or kept out (as `add --all` with the exclusions would)."""
    if changes.tracked:
        git(tree.path, "add", "--update", "--", *(f":(literal){path}" for path in changes.tracked), env=env)
    if changes.untracked:
        # Named files only, never beside exclude pathspecs: git 2.39 stages nothing for `add -- a/b ':(exclude)x'`.
        # worktree_changes has left junk and kept-out files out of the list already.
        git(tree.path, "add", "--all", "--", *(f":(literal){path}" for path in changes.untracked), env=env)


def _seed_index(tree: RunTree, scratch: Path, env: dict[str, str]) -> bool:
    """Start the scratch index as a copy of the worktree's (True) or, when that cannot be read, from the
    branch (False: then what `git status` said about the worktree's index does not apply to it)."""
    index = tree.gitdir / "index"
    if index.is_file() and not index.is_symlink():
        shutil.copy2(index, scratch)  # its mtime too: git tells racily-clean entries by it
        if git_ok(tree.path, "ls-files", "--", ".orchestra-no-such-path", env=env):  # reads the whole index
            return True
    scratch.unlink(missing_ok=True)
    git(tree.path, "read-tree", tree.branch_ref, env=env)
    return False


def working_tree_id(tree: RunTree, keep_out: tuple[str, ...] = ()) -> str:
    """The tree id the worktree's files would be committed as now (the worktree's index untouched)."""
    with staged(tree, keep_out) as (tree_id, _index):
        return tree_id


def changed_paths(tree: RunTree, keep_out: tuple[str, ...] = ()) -> list[str] | None:
    """What `git status` sees changed in the worktree against HEAD, untracked junk and keep_out left out;
    None when git cannot tell (an unreadable index, say): then only staging can."""
    changes = worktree_changes(tree, keep_out)
    return None if changes is None else changes.paths


def worktree_changes(tree: RunTree, keep_out: tuple[str, ...] = ()) -> Changes | None:
    """changed_paths, tracked and untracked apart."""
    try:
        # Every untracked file on its own (not a new directory as one entry): junk is left out file by file.
        out = tree.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    except GitError:
        return None
    tracked, untracked = [], []
    for entry in out.split("\0"):
        if len(entry) < 4:
            continue
        path = entry[3:]
        if entry[:2] != "??":
            tracked.append(path)
        elif not (matches_any(JUNK_GLOBS, path) or any(path == kept or path.startswith(kept.rstrip("/") + "/")
                                                        for kept in keep_out)):
            untracked.append(path)
    return Changes(tracked, untracked)


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

def snapshot(tree: RunTree, identity: dict[str, str], message: str, keep_out: tuple[str, ...] = (),
             tip: Tip | None = None) -> str | None:
    """Commit everything left in the worktree onto the run's branch; return the new commit or None.
    tip: the branch's commit and tree, when the caller has just read them."""
    tree.check()
    adopt_objects(tree)
    tip = tip or tip_of(tree)
    # What git status sees changed counts only when HEAD is the branch (it compares against HEAD).
    changed = worktree_changes(tree, keep_out) if head_ref(tree) == tree.branch_ref else None
    if changed is not None and not changed.paths:
        return None  # HEAD is the branch and git sees nothing new: nothing to stage
    with staged(tree, keep_out, only=changed) as (tree_id, scratch):
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


def secure_head(tree: RunTree, run_id: str, base: str, tip: str | None = None) -> list[dict[str, str]]:
    """Keep every commit the agent made reachable, put HEAD back on the run's branch, say what happened.
    tip: the branch's commit, when the caller has just read it."""
    tree.check()
    escapes: list[dict[str, str]] = []
    tip = tip or branch_tip(tree)
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
    tip = tip_of(tree)  # securing HEAD moves no branch: the tip read here is still the branch's after it
    escapes = secure_head(tree, run_id, base, tip.commit)
    commit = snapshot(tree, identity, message, keep_out, tip)
    return Settled(commit=commit, escapes=escapes, tip=commit or tip.commit)
