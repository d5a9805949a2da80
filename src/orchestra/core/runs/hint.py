"""The autonomy hint: which spec and agent pairs were last granted "auto", in `autonomy.json` in the state
directory, for a run's supervisor to ask cheaply whether asking the autonomy policy is worth a process.

fleet.autonomy rewrites it at each grant, revoke and demotion (and whenever it reads the standings). It is a
hint, never the authority: the policy reads the ledger and the score before it accepts anything, so a hint
that is wrong costs a process, never an accept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestra.core.base.files import write_atomic

HINT_FILE = "autonomy.json"


def write_hint(state_dir: Path, grants: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Rewrite the hint file: the pairs whose last grant or revoke gave them "auto"."""
    pairs = sorted([spec, agent] for (spec, agent), granted in grants.items() if granted.get("level") == "auto")
    text = json.dumps({"auto": pairs}) + "\n"
    path = state_dir / HINT_FILE
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        if not pairs or not state_dir.is_dir():  # nothing granted yet (a grant's ledger entry makes the dir)
            return
    write_atomic(path, text, mode=0o600)


def hinted_pairs(state_dir: Path) -> tuple[tuple[str, str], ...]:
    """The pairs the hint file says were granted "auto" (none when it cannot be read)."""
    try:
        pairs = json.loads((state_dir / HINT_FILE).read_text(encoding="utf-8")).get("auto", [])
    except (OSError, ValueError, AttributeError):
        return ()
    if not isinstance(pairs, list):
        return ()
    return tuple((str(pair[0]), str(pair[1])) for pair in pairs if isinstance(pair, list) and len(pair) == 2)


def hinted_auto(state_dir: Path, spec: str | None, agent: str) -> bool:
    """Whether the hint file says the pair was granted "auto" (False when it cannot be read)."""
    return bool(spec) and (str(spec), agent) in hinted_pairs(state_dir)
