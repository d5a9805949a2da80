"""Git worktree sandboxes for runs: create, snapshot, measure, remove — never losing work."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import OrchestraError
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.repo import Repository
from orchestra.core.base.files import file_lock

# Build artefacts a snapshot never commits, even when the repository does not ignore them.
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
# Options that keep a user's hooks and signing set-up out of orchestra's own commits.
_COMMIT_CONFIG = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


@dataclass(frozen=True)
class DiffStat:
    """What a run changed against its base: per-path numbers and totals."""

    paths: tuple[str, ...]
    added: int
    removed: int

    @property
    def files(self) -> int:
        return len(self.paths)


def create_worktree(repo: Repository, path: Path, branch: str, base: str) -> None:
    """Add a worktree at path on a new branch from base; only git's metadata step is serialised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(repo.state_dir / "worktree.lock"):
        git(repo.root, "worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(path), base)


def populate_worktree(path: Path) -> None:
    """Check out the files of a worktree created with --no-checkout."""
    git(path, "reset", "--quiet", "--hard", "HEAD")


def agent_identity(agent: str) -> dict[str, str]:
    """Author and committer for an agent's commits: the agent, not the user."""
    name, email = f"{agent} (orchestra agent)", f"{agent}@agents.orchestra.invalid"
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}


def has_changes(path: Path, extra_excludes: tuple[str, ...] = ()) -> bool:
    """Whether the worktree holds anything a snapshot would commit."""
    return bool(git(path, "status", "--porcelain", "--untracked-files=all", "--", ".",
                    *JUNK_PATHSPECS, *extra_excludes))


def snapshot(path: Path, agent: str, message: str, extra_excludes: tuple[str, ...] = (),
             as_user: bool = False) -> str | None:
    """Commit everything left in the worktree onto its branch; return the new commit or None.

    The author is the agent, or with as_user the repository's configured user (when there is one),
    for edits a person made in the worktree during review.
    """
    if not has_changes(path, extra_excludes):
        return None
    git(path, "add", "--all", "--", ".", *JUNK_PATHSPECS, *extra_excludes)
    identity = agent_identity(agent)
    if as_user and git_ok(path, "var", "GIT_AUTHOR_IDENT"):
        identity = {}
    git(path, *_COMMIT_CONFIG, "commit", "--quiet", "--no-verify", "-m", message, env=identity)
    return head(path)


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


def tree_of(commit_dir: Path, rev: str = "HEAD") -> str:
    return git(commit_dir, "rev-parse", f"{rev}^{{tree}}")


def working_tree_id(path: Path) -> str:
    """The tree id of the worktree's files as they are now, computed without touching its index."""
    index = git(path, "rev-parse", "--path-format=absolute", "--git-path", "index")
    with tempfile.TemporaryDirectory() as scratch:
        temp_index = Path(scratch) / "index"
        if os.path.exists(index):
            temp_index.write_bytes(Path(index).read_bytes())
        env = {"GIT_INDEX_FILE": str(temp_index)}
        git(path, "add", "--all", "--", ".", *JUNK_PATHSPECS, env=env)
        return git(path, "write-tree", env=env)


def diff_stat(cwd: Path, base: str, rev: str) -> DiffStat:
    """Changed paths and line counts between two revisions (binary files count as changed, 0 lines)."""
    out = git(cwd, "diff", "--numstat", "-z", "-M", base, rev)
    paths, added, removed = [], 0, 0
    fields = out.split("\0")
    i = 0
    while i < len(fields) - 1:
        counts = fields[i].split("\t")
        if len(counts) < 3:
            i += 1
            continue
        plus, minus, name = counts
        if name == "":  # a rename: old and new names follow as separate fields
            name = fields[i + 2]
            i += 3
        else:
            i += 1
        paths.append(name)
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
    return DiffStat(tuple(paths), added, removed)


def touched_paths(cwd: Path, base: str, rev: str) -> list[str]:
    """Every path a change touches, both sides of a rename included: what boundaries are checked on."""
    out = git(cwd, "diff", "--name-only", "--no-renames", "-z", base, rev)
    return [path for path in out.split("\0") if path]


def candidate_fields(path: Path, base: str) -> dict[str, object]:
    """The run fields that describe the worktree's HEAD as the run's candidate against base."""
    stat = diff_stat(path, base, "HEAD")
    return {"candidate": head(path), "tree": tree_of(path), "files_changed": stat.files,
            "lines_added": stat.added, "lines_removed": stat.removed, "changed_paths": list(stat.paths)}


def unified_diff(cwd: Path, base: str, rev: str) -> str:
    """The full patch between two revisions, as review shows it."""
    return git(cwd, "diff", "--no-color", "--no-ext-diff", "-M", base, rev)


def remove_worktree(repo: Repository, path: Path) -> str | None:
    """Remove a run's worktree if it holds nothing uncommitted; return why it was kept, else None."""
    if not path.exists():
        git(repo.root, "worktree", "prune", check=False)
        return None
    if has_changes(path):
        return f"worktree {path} was kept: it has uncommitted changes"
    with file_lock(repo.state_dir / "worktree.lock"):
        if git_ok(repo.root, "worktree", "remove", str(path)):
            return None
        # Only ignored build artefacts can be left here: the check above saw no real changes.
        if git_ok(repo.root, "worktree", "remove", "--force", str(path)):
            return None
    raise OrchestraError(f"Could not remove worktree {path}; it was left in place.")


def branch_exists(repo: Repository, branch: str) -> bool:
    return git_ok(repo.root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def git_rev(repo: Repository, rev: str) -> str:
    return git(repo.root, "rev-parse", "--verify", f"{rev}^{{commit}}")
