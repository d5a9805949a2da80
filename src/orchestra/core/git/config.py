"""Read git's configuration as git itself resolves it: every scope, includes, GIT_CONFIG_GLOBAL."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.errors import GitError
from orchestra.core.git.runner import git


@dataclass(frozen=True)
class ConfigValue:
    """One setting's effective value and the scope that set it (system, global, local, worktree, command)."""

    value: str
    scope: str


def read_config(root: Path, keys: Iterable[str]) -> dict[str, ConfigValue]:
    """The effective value of each of keys that is set, keyed by its lower-case name; one git process.

    Values are read as paths (a leading ~ is expanded), which leaves any value that is not a path as is.
    """
    pattern = "^(" + "|".join(re.escape(key.lower()) for key in keys) + ")$"
    try:
        out = git(root, "config", "-z", "--show-scope", "--type=path", "--get-regexp", pattern)
    except GitError as error:
        if error.returncode == 1:  # none of the keys is set
            return {}
        raise
    return _parse_scoped(out)


def _parse_scoped(out: str) -> dict[str, ConfigValue]:
    """Parse `-z --show-scope` output: scope NUL key LF value NUL, repeated; the last value wins."""
    fields = out.split("\0")
    found: dict[str, ConfigValue] = {}
    for scope, record in zip(fields[0::2], fields[1::2]):
        key, _, value = record.partition("\n")
        found[key] = ConfigValue(value=value, scope=scope)
    return found
