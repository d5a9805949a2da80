"""orchestra's places in the user's XDG state directory: what belongs to the person, not a repository.

A repository (and so an agent that edits one) can never write here: trust decisions and the port
blocks every repository's runs share live here.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """`$XDG_STATE_HOME/orchestra` (default `~/.local/state/orchestra`)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orchestra"
