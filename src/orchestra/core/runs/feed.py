"""Follow the fleet on disk: which runs changed, their new state and their new events."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
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

    def __init__(self, store: RunStore, defer: Callable[[Run], bool] = lambda _run: False) -> None:
        self.store, self.defer = store, defer
        self.offsets: dict[str, int] = {}
        self.stamps: dict[str, tuple[int, int]] = {}
        # Runs whose event log initial() left unread (those defer picks) until tails() is asked for them.
        self.deferred: set[str] = set()
        # changed() runs in one thread and tails() in another: offsets move under this lock.
        self.lock = threading.Lock()

    def initial(self, runs: list[Run]) -> dict[str, RunUpdate]:
        """The given runs (as just read) with the tail of each one's event log, except the runs defer picks:
        their events come from tails() when they are wanted (the UI makes no pane for an archived run)."""
        updates = {}
        with self.lock:
            for run in runs:
                self.stamps[run.id] = self._stamp(run.id)
                if self.defer(run):
                    self.deferred.add(run.id)
                    updates[run.id] = RunUpdate(run)
                    continue
                events, self.offsets[run.id] = self.store.read_events_tail(run.id, TAIL_BYTES)
                updates[run.id] = RunUpdate(run, events)
        return updates

    def tails(self, run_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The tail of each deferred run's event log among run_ids; from now on they are followed like the others
        (changed() brings only what comes after)."""
        found = {}
        with self.lock:
            for run_id in run_ids:
                if run_id in self.deferred:
                    self.deferred.discard(run_id)
                    found[run_id], self.offsets[run_id] = self.store.read_events_tail(run_id, TAIL_BYTES)
        return found

    def unread_bytes(self, run_ids: Iterable[str]) -> int:
        """How much tails() would read for run_ids: the caller decides whether it can wait for that."""
        total = 0
        for run_id in set(run_ids) & self.deferred:
            try:
                total += min(self.store.events_path(run_id).stat().st_size, TAIL_BYTES)
            except FileNotFoundError:
                pass
        return total

    def changed(self, paths: set[str]) -> dict[str, RunUpdate]:
        """Updates for the runs whose files are among paths."""
        updates: dict[str, RunUpdate] = {}
        with self.lock:
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
        if run_id in self.deferred:
            events: list[dict[str, Any]] = []  # read by tails() when wanted, all at once
        elif run_id not in self.offsets:
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
