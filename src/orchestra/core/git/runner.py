"""The one place that runs git: a thin, synchronous wrapper over the git command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestra.core.base.errors import GitError

# Keep git from prompting, paging or picking up a caller's GIT_DIR.
_QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "LC_ALL": "C"}
_SCRUBBED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: the caller's, scrubbed of repository overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(_QUIET_ENV)
    if extra:
        env.update(extra)
    return env


def git(cwd: Path | str, *args: str, env: dict[str, str] | None = None,
        input: str | None = None, check: bool = True) -> str:
    """Run `git args` in cwd and return stdout (trailing newline removed); raise GitError on failure."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(env), input=input,
        capture_output=True, text=True, errors="replace",
    )
    if check and done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr or done.stdout)
    return done.stdout.rstrip("\n")


def git_ok(cwd: Path | str, *args: str, env: dict[str, str] | None = None) -> bool:
    """Whether `git args` exits 0."""
    done = subprocess.run(["git", *args], cwd=cwd, env=git_env(env), capture_output=True)
    return done.returncode == 0
