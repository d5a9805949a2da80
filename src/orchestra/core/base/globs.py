"""gitignore-style globs (spec boundaries, disposable files), matched by pathspec.

`**` spans directories, `*` and `?` stay within one, a pattern without a slash matches at any depth,
a pattern naming a directory covers everything below it, and `!` re-includes what an earlier
pattern matched — as in a .gitignore file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

_REGEX_POSITION = re.compile(r" at position \d+$")  # a position in pathspec's regex, not in the pattern


class GlobError(ValueError):
    """A pattern that cannot be compiled; the message names it and says why."""


@lru_cache(maxsize=256)
def compile_globs(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """The compiled set of patterns; GlobError naming the first bad one."""
    import pathspec  # ~15 ms with its backends: loaded when a glob is first used, not with every score
    for pattern in patterns:
        problem = glob_problem(pattern)
        if problem:
            raise GlobError(f"{pattern!r} {problem}")
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def glob_problem(pattern: str) -> str | None:
    """Why pattern is not a usable glob, or None when it is."""
    if "\0" in pattern:
        return "contains a NUL character"
    import pathspec  # see compile_globs
    try:
        pathspec.GitIgnoreSpec.from_lines([pattern])
    except (re.error, ValueError, TypeError) as error:
        reason = _REGEX_POSITION.sub("", getattr(error, "msg", None) or str(error))
        return f"is not valid ({reason})"
    return None


def repository_glob_problem(pattern: str) -> str | None:
    """Why pattern is not a usable glob of paths inside a repository (relative, no `..`), or None."""
    if not pattern.strip():
        return "is empty"
    path = pattern[1:] if pattern.startswith("!") else pattern
    if path.startswith("/"):
        return "is an absolute path: globs are relative to the repository root"
    if ".." in path.split("/"):
        return "has a '..' component: globs cannot reach outside the repository"
    return glob_problem(pattern)


def matches_any(patterns: Iterable[str], path: str) -> bool:
    """Whether path (relative, with / separators) matches the patterns taken together."""
    patterns = tuple(patterns)
    return bool(patterns) and compile_globs(patterns).match_file(path)
