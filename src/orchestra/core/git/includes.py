"""`.worktreeinclude`: which ignored files of the user's checkout a new worktree gets a copy of.

The rules (gitignore syntax) are read from the run's base commit, the committed target: what an agent
edits in a worktree, or what lies uncommitted in the checkout, never widens them. The files are the
checkout's own: untracked, matching the rules, and ignored by the repository (tracked files come with
the checkout; an untracked file that is not ignored is someone's work in progress, not local settings).
git itself matches both the rules and the repository's ignores, so the semantics are exactly git's.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

from orchestra.core.git.runner import git

INCLUDE_FILE = ".worktreeinclude"
REGULAR_MODES = ("100644", "100755")


def include_rules(root: Path, base: str) -> str | None:
    """The committed `.worktreeinclude` at base, or None when base has none (or it is not a plain file)."""
    entry = git(root, "ls-tree", "-z", base, "--", INCLUDE_FILE, check=False).rstrip("\0")
    meta = entry.split("\t", 1)[0].split()
    if len(meta) != 3 or meta[0] not in REGULAR_MODES or meta[1] != "blob":
        return None
    return git(root, "cat-file", "blob", meta[2])


def included_paths(root: Path, rules: str) -> list[str]:
    """Paths (relative, with /) of the checkout's ignored, untracked files that the rules name."""
    if not any(line.strip() and not line.lstrip().startswith("#") for line in rules.splitlines()):
        return []
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".worktreeinclude") as file:
        file.write(rules + "\n")
        file.flush()
        named = git(root, "ls-files", "-z", "--others", "--ignored", f"--exclude-from={file.name}")
    candidates = [path for path in named.split("\0") if path]
    if not candidates:
        return []
    # Of those, only what the repository itself ignores (exit 1 from check-ignore: none is).
    ignored = git(root, "check-ignore", "-z", "--stdin", input="\0".join(candidates) + "\0", check=False)
    return sorted(path for path in ignored.split("\0") if path)


COPIES_FILE = "included.json"  # {path: sha256} of the files copied in, in the run's state directory


def file_digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def unchanged_copies(run_dir: Path, worktree: Path) -> tuple[str, ...]:
    """Globs naming exactly the included files still as they were copied: removing them along with the
    worktree loses nothing (the checkout has them). One an agent changed is kept like any other file."""
    try:
        record = json.loads((run_dir / COPIES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    if not isinstance(record, dict):
        return ()
    return tuple(exact_glob(path) for path, digest in record.items()
                 if isinstance(path, str) and digest and file_digest(worktree / path) == digest)


def exact_glob(path: str) -> str:
    """A gitignore pattern matching path alone (anchored at the root, special characters escaped)."""
    return "/" + re.sub(r"([\\*?\[\]!# ])", r"\\\1", path)
