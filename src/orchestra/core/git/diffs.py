"""What a candidate changes: always measured from the merge base of the candidate and its target.

The review shows this diff, the ledger hashes it and the merge brings exactly it: an agent that
moves its branch back, or a candidate the target already holds, changes nothing and is shown so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.git.runner import git, git_bytes


@dataclass(frozen=True)
class DiffStat:
    """What a run changed against its merge base: per-path numbers and totals."""

    paths: tuple[str, ...]
    added: int
    removed: int

    @property
    def files(self) -> int:
        return len(self.paths)


def tree_of(cwd: Path, rev: str) -> str:
    return git(cwd, "rev-parse", f"{rev}^{{tree}}")


def merge_base(cwd: Path, target: str, candidate: str, fallback: str) -> str:
    """The best common ancestor of target and candidate (fallback when they share no history)."""
    found = git(cwd, "merge-base", target, candidate, check=False).split()
    return found[0] if found else fallback


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


def unified_diff(cwd: Path, base: str, rev: str) -> str:
    """The full patch between two revisions, as review shows it and the ledger hashes it."""
    return git(cwd, "diff", "--no-color", "--no-ext-diff", "-M", base, rev)


def candidate_fields(cwd: Path, candidate: str, target_ref: str, base: str) -> dict[str, object]:
    """The run fields that describe candidate against its merge base with the target."""
    since = merge_base(cwd, target_ref, candidate, base)
    stat = diff_stat(cwd, since, candidate)
    return {"candidate": candidate, "tree": tree_of(cwd, candidate), "merge_base": since,
            "files_changed": stat.files, "lines_added": stat.added, "lines_removed": stat.removed,
            "changed_paths": list(stat.paths)}


def added_lines(cwd: Path, base: str, rev: str) -> dict[str, set[int]]:
    """path → the line numbers (in rev) the change adds or alters: what "changed lines" means for SARIF
    and coverage gates (see added.added_text, which reads the diff)."""
    from orchestra.core.git.added import added_text
    return {path: {number for number, _ in lines} for path, lines in added_text(cwd, base, rev).items()}


def files_at(cwd: Path, rev: str, paths: tuple[str, ...], limit: int = 64 * 1024) -> dict[str, str]:
    """path → text of each of paths that rev holds as a file (the first `limit` bytes; others left out)."""
    found: dict[str, str] = {}
    listed = git(cwd, "ls-tree", "-z", "--format=%(objecttype) %(objectname)\t%(path)", rev, "--", *paths)
    for entry in listed.split("\0"):
        head, _, path = entry.partition("\t")
        if head.startswith("blob "):
            data = git_bytes(cwd, "cat-file", "blob", head.split(" ", 1)[1])
            found[path] = data[:limit].decode("utf-8", "replace")
    return found
