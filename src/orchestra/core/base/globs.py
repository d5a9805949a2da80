"""gitignore-style globs (spec boundaries, disposable files), matched by pathspec.

`**` spans directories, `*` and `?` stay within one, a pattern without a slash matches at any depth,
a pattern naming a directory covers everything below it, and `!` re-includes what an earlier
pattern matched — as in a .gitignore file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import pathspec


class GlobError(ValueError):
    """A pattern that cannot be compiled; the message names it and says why."""


@lru_cache(maxsize=256)
def compile_globs(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """The compiled set of patterns; GlobError naming the first bad one."""
    for pattern in patterns:
        problem = glob_problem(pattern)
        if problem:
            raise GlobError(f"{pattern!r}: {problem}")
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def glob_problem(pattern: str) -> str | None:
    """Why pattern is not a usable glob, or None when it is."""
    if "\0" in pattern:
        return "contains a NUL character"
    try:
        pathspec.GitIgnoreSpec.from_lines([pattern])
    except (re.error, ValueError, TypeError) as error:
        return f"not a valid glob ({error})"
    return None


def matches_any(patterns: Iterable[str], path: str) -> bool:
    """Whether path (relative, with / separators) matches the patterns taken together."""
    patterns = tuple(patterns)
    return bool(patterns) and compile_globs(patterns).match_file(path)
