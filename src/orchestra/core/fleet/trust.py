"""Trust in a repository's setup commands: asked of a named human, remembered outside the repository.

Setup commands (`[orchestra] setup`, then a spec's `setup`) come from the repository's files: code it
hands you. Before they first run, and whenever they change, the conductor is asked (the UI's dialog,
or `orchestra spawn --trust`). The answer is kept in `$XDG_STATE_HOME/orchestra/trust.json`, keyed
by the repository's path and the sha256 of the exact command list, so nothing a repository commits
can mark it trusted. Runs with no setup commands need no trust.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import file_lock, write_atomic
from orchestra.core.base.places import state_home
from orchestra.core.git.actor import current_actor
from orchestra.core.score import Score, Spec


class UntrustedSetup(OrchestraError):
    """The setup commands a spawn would run have not been allowed; nothing was started."""

    exit_status = 3

    def __init__(self, commands: Sequence[str], changed: bool) -> None:
        self.commands = tuple(commands)
        listed = "\n".join(f"  {command}" for command in commands)
        why = "changed since you last allowed them" if changed else "have not been allowed on this machine yet"
        super().__init__(f"This repository's setup commands {why}:\n{listed}\n"
                         "They run in every new worktree before its agent (in the run's sandbox). Nothing was "
                         "started: read them, then run again with --trust to allow them.")


def trust_path() -> Path:
    return state_home() / "trust.json"


def setup_commands(score: Score | None, spec: Spec | None) -> tuple[str, ...]:
    """What a new run's worktree is set up with: `[orchestra] setup`, then the spec's."""
    return (*(score.setup if score else ()), *(spec.setup if spec else ()))


def commands_hash(commands: Sequence[str]) -> str:
    """sha256 of the exact command list (order and whitespace included)."""
    return hashlib.sha256(json.dumps(list(commands), ensure_ascii=False).encode()).hexdigest()


def repository_key(root: Path) -> str:
    return str(Path(root).resolve())


def _load() -> dict[str, Any]:
    try:
        data = json.loads(trust_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: nothing is trusted (asked again, then rewritten)
    return data if isinstance(data, dict) else {}


def _trusted_hashes(data: dict[str, Any], root: Path) -> dict[str, Any]:
    repos = data.get("repositories")
    entry = repos.get(repository_key(root)) if isinstance(repos, dict) else None
    return entry if isinstance(entry, dict) else {}


def commands_to_allow(root: Path, commands: Sequence[str]) -> tuple[str, ...]:
    """The commands the conductor must allow before they run here: none when there are none, or when
    exactly this list was allowed for this repository before."""
    if not commands or commands_hash(commands) in _trusted_hashes(_load(), root):
        return ()
    return tuple(commands)


def grant(root: Path, commands: Sequence[str], actor: str) -> None:
    """Remember that actor allowed exactly these commands for the repository at root."""
    path = trust_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(path.with_name("trust.lock")):
        data = _load()
        repos = data.get("repositories") if isinstance(data.get("repositories"), dict) else {}
        entry = _trusted_hashes(data, root)
        entry[commands_hash(commands)] = {"commands": list(commands), "allowed_by": actor, "time": time.time()}
        repos[repository_key(root)] = entry
        write_atomic(path, json.dumps({"version": 1, "repositories": repos}, indent=1), durable=True, mode=0o600)


def require_trust(root: Path, commands: Sequence[str], allow: bool) -> None:
    """Refuse (UntrustedSetup, exit 3) setup commands not yet allowed here, unless allow: then record that
    the conductor (git's user) allowed them."""
    pending = commands_to_allow(root, commands)
    if not pending:
        return
    if not allow:
        raise UntrustedSetup(pending, changed=bool(_trusted_hashes(_load(), root)))
    grant(root, pending, current_actor(root))


def setup_to_allow(root: Path, score: Score | None, spec_id: str | None) -> tuple[str, ...]:
    """What a spawn of spec_id (None: a free-text task) would have to ask the conductor to allow first."""
    spec = next((spec for spec in (score.specs if score else ()) if spec.id == spec_id), None)
    return commands_to_allow(root, setup_commands(score, spec))
