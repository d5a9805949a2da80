"""Runs on disk: one directory per run with its state file and append-only event log."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import RunNotFound
from orchestra.core.base.files import file_lock, write_atomic
from orchestra.core.runs.run import Run

STATE_FILE = "run.json"
EVENTS_FILE = "events.jsonl"


class RunStore:
    """Reads and writes run records and event logs under the repository's state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def events_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / EVENTS_FILE

    def allocate_id(self, taken: Callable[[str], bool] = lambda _id: False) -> str:
        """A new run id (r1, r2, …), unique across processes and not rejected by taken()."""
        counter = self.state_dir / "next-run-id"
        with file_lock(self.state_dir / "ids.lock"):
            number = int(counter.read_text() or "1") if counter.exists() else 1
            while self.run_dir(f"r{number}").exists() or taken(f"r{number}"):
                number += 1
            self.run_dir(f"r{number}").mkdir(parents=True)
            write_atomic(counter, str(number + 1))
        return f"r{number}"

    def save(self, run: Run) -> None:
        with file_lock(self.run_dir(run.id) / "lock"):
            self._write(run)

    def _write(self, run: Run) -> None:
        write_atomic(self.run_dir(run.id) / STATE_FILE, json.dumps(run.to_json(), indent=1))

    def load(self, run_id: str) -> Run:
        path = self.run_dir(run_id) / STATE_FILE
        try:
            return Run.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RunNotFound(f"There is no run {run_id!r}. `orchestra runs` lists the runs.") from None

    def update(self, run_id: str, change: Callable[[Run], Any]) -> Run:
        """Apply change to the stored run under its lock and persist the result."""
        with file_lock(self.run_dir(run_id) / "lock"):
            run = self.load(run_id)
            change(run)
            self._write(run)
            return run

    def set(self, run_id: str, **values: Any) -> Run:
        """Set fields of the stored run under its lock."""
        def change(run: Run) -> None:
            for key, value in values.items():
                setattr(run, key, value)
        return self.update(run_id, change)

    def list(self) -> list[Run]:
        """Every run with a readable state file, oldest first."""
        runs = []
        if self.runs_dir.is_dir():
            for entry in self.runs_dir.iterdir():
                try:
                    runs.append(self.load(entry.name))
                except (RunNotFound, ValueError, TypeError):
                    continue
        return sorted(runs, key=lambda run: (run.created, run.id))

    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Append events (each stamped with a time) as JSON lines in one write."""
        if not events:
            return
        now = time.time()
        data = "".join(json.dumps({"t": now, **event}, ensure_ascii=False) + "\n" for event in events)
        fd = os.open(self.events_path(run_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data.encode("utf-8"))
        finally:
            os.close(fd)

    def read_events_tail(self, run_id: str, max_bytes: int = 65536) -> tuple[list[dict[str, Any]], int]:
        """The events in the last max_bytes of the log (cheap on a flooded log), and the end offset."""
        try:
            size = self.events_path(run_id).stat().st_size
        except FileNotFoundError:
            return [], 0
        start = max(0, size - max_bytes)
        events, end = self.read_events(run_id, start)
        return (events[1:] if start else events), end

    def read_events(self, run_id: str, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Complete events from byte offset on, and the offset after the last complete one."""
        try:
            with open(self.events_path(run_id), "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        events = []
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events, offset + end
