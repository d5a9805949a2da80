"""Follow the fleet on disk: which runs changed, their new state and their new events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import RunNotFound
from orchestra.core.runs.run import Run
from orchestra.core.runs.store import EVENTS_FILE, STATE_FILE, DamagedRun, RunStore, is_run_id

TAIL_BYTES = 256 * 1024


@dataclass
class RunUpdate:
    """What changed for one run since the feed last looked."""

    run: Run | None
    events: list[dict[str, Any]] = field(default_factory=list)


class FleetFeed:
    """Turns file-change notifications under the runs dir into run updates, reading only new bytes."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.offsets: dict[str, int] = {}
        self.stamps: dict[str, tuple[int, int]] = {}

    def initial(self, runs: list[Run]) -> dict[str, RunUpdate]:
        """The given runs (as just read) with the tail of each one's event log."""
        updates = {}
        for run in runs:
            events, offset = self.store.read_events_tail(run.id, TAIL_BYTES)
            self.offsets[run.id] = offset
            self.stamps[run.id] = self._stamp(run.id)
            updates[run.id] = RunUpdate(run, events)
        return updates

    def changed(self, paths: set[str]) -> dict[str, RunUpdate]:
        """Updates for the runs whose files are among paths."""
        updates: dict[str, RunUpdate] = {}
        for run_id in sorted(self._run_ids(paths)):
            update = self.refresh(run_id)
            if update is not None:
                updates[run_id] = update
        return updates

    def refresh(self, run_id: str) -> RunUpdate | None:
        """Re-read one run: its state if the file changed, and any events appended since last time."""
        stamp = self._stamp(run_id)
        run = None
        if stamp != self.stamps.get(run_id):
            try:
                run = self.store.load(run_id)
            except DamagedRun as damaged:
                run = damaged.run
            except RunNotFound:
                return None  # being written for the first time; the next notification brings it
            self.stamps[run_id] = stamp
        if run_id not in self.offsets:
            events, self.offsets[run_id] = self.store.read_events_tail(run_id, TAIL_BYTES)
        else:
            events, self.offsets[run_id] = self.store.read_events(run_id, self.offsets[run_id])
        if run is None and not events:
            return None
        return RunUpdate(run, events)

    def _stamp(self, run_id: str) -> tuple[int, int]:
        try:
            stat = (self.store.run_dir(run_id) / STATE_FILE).stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def _run_ids(self, paths: set[str]) -> set[str]:
        ids = set()
        for raw in paths:
            path = Path(raw)
            try:
                rel = path.relative_to(self.store.runs_dir)
            except ValueError:
                continue
            if rel.parts and is_run_id(rel.parts[0]) and (len(rel.parts) == 1 or rel.parts[1] in
                                                          (STATE_FILE, EVENTS_FILE)):
                ids.add(rel.parts[0])
        return ids
