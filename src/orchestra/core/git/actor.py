"""Who is deciding: the accountable actor recorded in the ledger and in merge commits."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from orchestra.core.git.runner import git


def _identity(root: Path) -> tuple[str, str]:
    """user.name and user.email from git's config (one git call)."""
    out = git(root, "config", "--get-regexp", r"^user\.(name|email)$", check=False)
    found = dict(line.partition(" ")[::2] for line in out.splitlines())
    return found.get("user.name", "").strip(), found.get("user.email", "").strip()


def current_actor(root: Path) -> str:
    """`Name <email>` from git's config, else user@host."""
    name, email = _identity(root)
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return name or email
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def actor_identity(actor: str) -> dict[str, str]:
    """Environment that makes git author and commit as the actor."""
    name, _, rest = actor.partition(" <")
    email = rest.rstrip(">") if rest else (actor if "@" in actor else f"{actor}@localhost")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
