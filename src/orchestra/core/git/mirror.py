"""A repository's mirror on a host: a run's base goes there, its branch comes back, by git over ssh.

The mirror is a repository of its own on the host (no checkout); a run's base is pushed to
`refs/orchestra/base/<run>` (git sends only what the mirror lacks), and the run's branch is fetched back into
the user's repository under its own name, so review, diff and accept read it like any local run's. What comes
back is checked: the branch must hold the commit the run's record names, or it is not taken.
"""

from __future__ import annotations

import re

from orchestra.core.base.errors import GitError
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git, git_ok

COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def base_ref(run_id: str) -> str:
    return f"refs/orchestra/base/{run_id}"


def push_base(repo: Repository, url: str, ssh_command: str, base: str, run_id: str) -> None:
    """Send the run's base commit (and what the mirror lacks of its history) to the host's mirror."""
    git(repo.root, "push", "--quiet", "--force", "--no-verify", url, f"{base}:{base_ref(run_id)}",
        env={"GIT_SSH_COMMAND": ssh_command, "GIT_TERMINAL_PROMPT": "0"})


def fetch_branch(repo: Repository, url: str, ssh_command: str, branch: str, expect: str) -> None:
    """Bring the run's branch back from the host's mirror into the user's repository as the same branch, if its
    history holds the commit expected (the candidate the host's record names), set at that commit; GitError
    otherwise, nothing changed."""
    if not COMMIT.fullmatch(expect):
        raise GitError(("fetch",), 1, f"the host named {expect[:60]!r} as the run's candidate: not a commit id")
    if git_ok(repo.root, "cat-file", "-e", f"{expect}^{{commit}}") and \
            git(repo.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False) == expect:
        return  # already here
    env = {"GIT_SSH_COMMAND": ssh_command, "GIT_TERMINAL_PROMPT": "0"}
    fetched = f"refs/orchestra/fetched/{branch}"
    git(repo.root, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, f"+refs/heads/{branch}:{fetched}",
        env=env)
    try:  # the branch may have moved on since the record was read: the candidate must be on it
        if not git_ok(repo.root, "merge-base", "--is-ancestor", expect, fetched):
            raise GitError(("fetch",), 1, f"the host's branch {branch} does not hold the candidate {expect[:10]} "
                                          "its record names: not taken")
        git(repo.root, "update-ref", f"refs/heads/{branch}", expect)
    finally:
        git(repo.root, "update-ref", "-d", fetched, check=False)
