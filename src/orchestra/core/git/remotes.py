"""Remotes: which one a run is published to, pushing its branch there, and the web page to compare it on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from orchestra.core.base.errors import ActionRefused, GitError
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")  # git@github.com:o/r.git


@dataclass(frozen=True)
class Slug:
    """A hosted repository named by a remote URL: its host and its owner/name path."""

    host: str
    path: str  # owner/name (GitLab: group/subgroup/name)

    @property
    def web(self) -> str:
        return f"https://{self.host}/{self.path}"


def choose_remote(repo: Repository, target: str, wanted: str | None) -> str:
    """The remote to publish to: the one asked for, else the target branch's upstream remote, else origin."""
    remotes = git(repo.root, "remote").split()
    if wanted:
        if wanted not in remotes:
            raise ActionRefused(f"There is no remote {wanted!r} (remotes: {', '.join(remotes) or 'none'}).")
        return wanted
    upstream = git(repo.root, "config", "--get", f"branch.{target}.remote", check=False)
    if upstream in remotes:
        return upstream
    if "origin" in remotes:
        return "origin"
    raise ActionRefused(f"There is no remote to push to: {target} has no upstream and there is no origin "
                        f"(remotes: {', '.join(remotes) or 'none'}). Add one (`git remote add origin URL`) "
                        "or name one with --remote.")


def remote_url(repo: Repository, remote: str) -> str:
    return git(repo.root, "remote", "get-url", remote)  # the repository's identity (a push URL may differ)


def push_commit(repo: Repository, remote: str, commit: str, branch: str) -> None:
    """Push commit to the remote's branch of the same name (never forced); ActionRefused when refused."""
    try:
        git(repo.root, "push", "--porcelain", "--no-verify", remote, f"{commit}:refs/heads/{branch}",
            env=no_prompts(repo))
    except GitError as error:
        raise ActionRefused(f"{remote} refused the push of {branch}: {last_lines(error.stderr)}\n"
                            "Nothing was recorded. (If the remote branch holds older work of this run, "
                            "delete it there or push by hand.)") from None


def no_prompts(repo: Repository) -> dict[str, str]:
    """Keep ssh from asking for a passphrase or a host key on a terminal git does not own (it would wait
    for ever); the user's own ssh command, when they set one, is left alone."""
    if os.environ.get("GIT_SSH_COMMAND") or os.environ.get("GIT_SSH") or \
            git(repo.root, "config", "--get", "core.sshCommand", check=False):
        return {}
    return {"GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}


def last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no reason given"


def without_credentials(url: str) -> str:
    """The URL with any user:password part removed (it must never reach the ledger or the screen)."""
    parts = urlsplit(url)
    if parts.scheme and parts.password is not None:
        host = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))
    return url


def slug_of(url: str) -> Slug | None:
    """The host and owner/name a remote URL names (https, ssh:// and git@host: forms), or None."""
    match = _SCP_LIKE.match(url) if "://" not in url else None
    if match:
        host, path = match["host"], match["path"]
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git")
    return Slug(host, path) if path.count("/") >= 1 else None


def compare_url(url: str, target: str, branch: str) -> str | None:
    """The page that compares branch with target (and offers to open a pull or merge request), for
    GitHub- and GitLab-style hosts; None when the remote is neither."""
    slug = slug_of(url)
    if slug is None:
        return None
    span = f"{quote(target, safe='/')}...{quote(branch, safe='/')}"
    if "gitlab" in slug.host:
        return f"{slug.web}/-/compare/{span}"
    if "github" in slug.host:
        return f"{slug.web}/compare/{span}?expand=1"
    return None
