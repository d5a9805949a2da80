"""The decision journal: a decision is written down before it changes anything and struck out after.

One file per decision under `.git/orchestra/journal/`, written durably (fsync of the file and of the
directory) before the first change, and removed once every step is done. A file that is still there
when nobody holds the decide lock belongs to a decision whose process died; the fleet completes or
rolls it back on its next start (see Decisions.converge).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from orchestra.core.base.files import fsync_dir, write_atomic

JOURNAL_DIR = "journal"
UPDATE_STATE = "update"  # updates onto a moved target (fleet.update) journal under <state>/update/journal


def new_decision_id() -> str:
    """A decision's id: 32 hex digits, named in its ledger entry and its merge commit's trailer."""
    import uuid  # with platform, a few ms: loaded by the first decision, not by opening the fleet
    return uuid.uuid4().hex


class Journal:
    """Pending decisions on disk."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / JOURNAL_DIR

    def _path(self, decision_id: str) -> Path:
        return self.dir / f"{decision_id}.json"

    def begin(self, record: dict[str, Any]) -> dict[str, Any]:
        """Durably record a decision about to be carried out (record must hold its "id")."""
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {**record, "pid": os.getpid(), "begun": time.time()}
        write_atomic(self._path(record["id"]), json.dumps(record, ensure_ascii=False, indent=1), durable=True)
        return record

    def finish(self, decision_id: str) -> None:
        """Strike a decision out: every step is done."""
        self._path(decision_id).unlink(missing_ok=True)
        fsync_dir(self.dir)

    def pending_files(self) -> bool:
        """Whether any decision file is there: cheap, for deciding whether converging is needed at all."""
        try:
            with os.scandir(self.dir) as entries:
                return any(entry.name.endswith(".json") for entry in entries)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def pending(self) -> list[dict[str, Any]]:
        """Every decision begun and not finished, oldest first; unreadable files are set aside."""
        if not self.dir.is_dir():
            return []
        records = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise ValueError("not a decision record")
            except (OSError, ValueError):
                # Only a crash inside write_atomic's rename could leave this; keep it for a human.
                os.replace(path, path.with_suffix(".unreadable"))
                continue
            records.append(record)
        return sorted(records, key=lambda record: record.get("begun", 0.0))
