"""The one place that runs git: a thin, synchronous wrapper over the git command.

Every git orchestra runs is hardened the same way: no prompts or pagers, none of the caller's
repository overrides, no hooks and no fsmonitor command (a repository's config must not make
orchestra run programs), and its own process group, so a Ctrl-C at the terminal never kills a git
half-way through updating a checkout. During a decision, git children may inherit the decision's
lock (see inherit_fds): the lock then stays held until the last git the decision started has ended,
even if orchestra itself was killed.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestra.core.base.errors import GitError

# Keep git from prompting, paging or picking up a caller's GIT_DIR.
_QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "LC_ALL": "C"}
_SCRUBBED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")
# Settings no repository config may override for orchestra's own git calls.
SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "commit.gpgsign=false",
               "-c", "tag.gpgsign=false")
_inherited = threading.local()


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: the caller's, scrubbed of repository overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(_QUIET_ENV)
    if extra:
        env.update(extra)
    return env


@contextmanager
def inherit_fds(*fds: int) -> Iterator[None]:
    """Let every git started by this thread inside the block inherit fds (e.g. a held lock)."""
    before = getattr(_inherited, "fds", ())
    _inherited.fds = (*before, *fds)
    try:
        yield
    finally:
        _inherited.fds = before


def _run(cwd: Path | str, args: tuple[str, ...], env: dict[str, str] | None, input: str | bytes | None,
         text: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *SAFE_CONFIG, *args], cwd=cwd, env=git_env(env), input=input, capture_output=True,
        text=text, errors="replace" if text else None, process_group=0,
        pass_fds=getattr(_inherited, "fds", ()))


def git(cwd: Path | str, *args: str, env: dict[str, str] | None = None,
        input: str | None = None, check: bool = True) -> str:
    """Run `git args` in cwd and return stdout (trailing newline removed); raise GitError on failure."""
    done = _run(cwd, args, env, input, text=True)
    if check and done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr or done.stdout)
    return done.stdout.rstrip("\n")


def git_bytes(cwd: Path | str, *args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> bytes:
    """Run `git args` and return its raw stdout (for object contents); raise GitError on failure."""
    done = _run(cwd, args, env, input, text=False)
    if done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr.decode("utf-8", "replace"))
    return done.stdout


def git_ok(cwd: Path | str, *args: str, env: dict[str, str] | None = None) -> bool:
    """Whether `git args` exits 0."""
    return _run(cwd, args, env, None, text=False).returncode == 0
