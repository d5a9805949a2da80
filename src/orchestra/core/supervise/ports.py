"""Port blocks: each live run gets ten ports of its own (`ORCHESTRA_PORT` is the first), so parallel
dev servers and test servers never collide.

Blocks are handed out from one registry for every repository of the user
(`$XDG_STATE_HOME/orchestra/ports.json`, under a file lock). A block is free again once its run is
decided (accepted or rejected) or gone; a failed or stopped run keeps its block, since a redirect
carries it on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError, RunNotFound
from orchestra.core.base.files import file_lock, write_atomic
from orchestra.core.base.places import state_home
from orchestra.core.runs.run import DECIDED_STATES
from orchestra.core.runs.store import DamagedRun, RunStore

FIRST_PORT, LAST_BLOCK, BLOCK_SIZE = 20000, 29990, 10
# A block whose run has no record yet is being spawned: it stays held this long.
SPAWN_GRACE = 120.0


class NoFreePorts(OrchestraError):
    """Every block of the range is held by a live run."""


def registry_path() -> Path:
    return state_home() / "ports.json"


def allocate_block(state_dir: Path, run_id: str, live: set[tuple[str, str]] | None = None) -> int:
    """The first port of a free block, now held by the run (its own block if it already holds one).

    live: holders (state dir, run id) already found live by the caller in the same batch, which it passes to each
    allocation of the batch: spawning N runs then reads each holder's record once, not once per new run (N² record
    loads were most of a 16-run spawn's time). The runs it holds are added to it."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    live = set() if live is None else live
    with file_lock(path.with_name("ports.lock")):
        held = {first: holder for first, holder in _read(path).items() if _is_live(holder, live)}
        for first, holder in held.items():
            if holder.get("state_dir") == str(state_dir) and holder.get("run") == run_id:
                return int(first)
        first = next((port for port in range(FIRST_PORT, LAST_BLOCK + 1, BLOCK_SIZE) if str(port) not in held), None)
        if first is None:
            raise NoFreePorts(f"All {len(held)} port blocks ({FIRST_PORT}-{LAST_BLOCK + BLOCK_SIZE - 1}) are held "
                              "by live runs: decide some runs first.")
        held[str(first)] = {"state_dir": str(state_dir), "run": run_id, "since": time.time()}
        live.add((str(state_dir), run_id))
        write_atomic(path, json.dumps(held, indent=1), mode=0o600)
        return first


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if key.isdigit() and isinstance(value, dict)}


def _is_live(holder: dict[str, Any], live: set[tuple[str, str]]) -> bool:
    """Whether the run holding a block is still undecided (or being spawned, or unreadable); one found live is
    added to live, and one in live is not read again."""
    state_dir, run_id = holder.get("state_dir"), holder.get("run")
    if not isinstance(state_dir, str) or not isinstance(run_id, str):
        return False
    if (state_dir, run_id) in live:
        return True
    try:
        if RunStore(Path(state_dir)).load(run_id).state in DECIDED_STATES:
            return False
        live.add((state_dir, run_id))
        return True
    except DamagedRun:
        return True  # it can still be rejected; until then its block is kept
    except RunNotFound:
        since = holder.get("since")
        return isinstance(since, (int, float)) and time.time() - since < SPAWN_GRACE
