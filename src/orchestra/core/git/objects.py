"""Commits and their trailers: one history walk by the git CLI, point lookups through GitPython.

The walk over every ref stays with `git log`: git filters the messages in C, and the caller's thread
only waits on a pipe (it can run next to other work). Looking up a handful of commits by id goes
through GitPython's persistent `git cat-file --batch`, one process for all of them. GitPython is
imported only when a lookup is needed: it costs ~0.15 s, which a one-shot command should not pay.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestra.core.git.runner import git

Trailers = dict[str, list[str]]

_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)$")
_OBJECT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def parse_trailers(text: str) -> Trailers:
    """Map each trailer key to its values, in order, from `Key: value` lines (continuations folded)."""
    trailers: Trailers = {}
    last: tuple[str, int] | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            key, index = last
            trailers[key][index] += " " + line.strip()
            continue
        match = _TRAILER.match(line)
        if match is None:
            last = None
            continue
        values = trailers.setdefault(match.group(1), [])
        values.append(match.group(2).strip())
        last = (match.group(1), len(values) - 1)
    return trailers


def message_trailers(message: str, keys: tuple[str, ...] = ()) -> Trailers:
    """The trailers of a commit message: its last paragraph, when every line of it is a trailer.

    Keys that match one of keys without regard to case (as git matches them) are spelt as in keys."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    last = paragraphs[-1]
    lines = [line for line in last.splitlines() if line[:1] not in (" ", "\t")]
    if not all(_TRAILER.match(line) for line in lines):
        return {}
    spelling = {key.lower(): key for key in keys}
    found: Trailers = {}
    for key, values in parse_trailers(last).items():
        found.setdefault(spelling.get(key.lower(), key), []).extend(values)
    return found


# Where accepted merges live: the first-parent history of branches (local and remote-tracking). Run
# branches (orchestra/...) are left out: an agent writes those, and a message it makes up there is
# not a merge anybody accepted.
MERGE_HISTORY = ("--first-parent", "--merges", "--exclude=orchestra/*", "--branches", "--remotes")


def commits_with_trailers(root: Path, grep: tuple[str, ...], keys: tuple[str, ...],
                          revs: tuple[str, ...] = MERGE_HISTORY) -> dict[str, Trailers]:
    """Every commit revs reach (default: merges on branches' first-parent history) whose message holds
    one of `grep:`, mapped to its trailers with one of keys (matched as git does, without regard to
    case; spelt as in keys)."""
    spelling = {key.lower(): key for key in keys}
    out = git(root, "log", *revs, "-z", "-F", *(f"--grep={word}:" for word in grep),
              f"--format=%H%n%(trailers:{','.join(f'key={key}' for key in keys)},unfold,key_value_separator=%x1f)")
    found: dict[str, Trailers] = {}
    for record in out.split("\0"):
        sha, _, lines = record.partition("\n")
        if not sha:
            continue
        trailers: Trailers = {}
        for line in lines.split("\n"):
            key, sep, value = line.partition("\x1f")
            if sep:
                trailers.setdefault(spelling.get(key.lower(), key), []).append(value.strip())
        found[sha] = trailers
    return found


def trees_of(root: Path, commits: list[str]) -> dict[str, str]:
    """Each commit's tree id, in one `git cat-file`; a commit git does not have is left out."""
    wanted = sorted({commit for commit in commits if is_object_id(commit)})
    if not wanted:
        return {}
    out = git(root, "cat-file", "--batch-check", input="".join(f"{commit}^{{tree}}\n" for commit in wanted))
    trees = {}
    for commit, line in zip(wanted, out.splitlines()):
        found = line.split()
        if len(found) == 3 and found[1] == "tree":
            trees[commit] = found[0]
    return trees


def is_object_id(text: object) -> bool:
    """Whether text is a full object id (sha1 or sha256), lower-case hex."""
    return isinstance(text, str) and _OBJECT_ID.match(text) is not None


class CommitReader:
    """Reads commit messages by id through one persistent `git cat-file --batch` (GitPython)."""

    def __init__(self, git_dir: Path) -> None:
        import git as gitpython  # deferred: see the module docstring

        self._git: Any = gitpython.Git(str(git_dir))
        self._git.update_environment(GIT_DIR=str(git_dir))

    def message(self, sha: str) -> str | None:
        """The commit's message, None when sha is not a full id of a commit in the repository."""
        if not is_object_id(sha):
            return None
        try:
            _, kind, _, data = self._git.get_object_data(sha)
        except ValueError:  # GitPython's answer for a missing object
            return None
        if kind not in (b"commit", "commit"):  # GitPython gives the type as bytes
            return None
        return data.decode("utf-8", "replace").partition("\n\n")[2]

    def trailers(self, sha: str, keys: tuple[str, ...] = ()) -> Trailers | None:
        """The commit's trailers (keys spelt as in keys, see message_trailers), None when there is no such commit."""
        message = self.message(sha)
        return None if message is None else message_trailers(message, keys)

    def close(self) -> None:
        """End the persistent cat-file processes."""
        self._git.clear_cache()

    def __enter__(self) -> CommitReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
