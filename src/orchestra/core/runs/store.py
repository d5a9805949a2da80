"""Runs on disk: one directory per run with its state file and append-only event log.

Ids are checked before they touch the file system (`r1/../r2` is not r2), stray files in the runs
directory (an editor's backup, say) are ignored, and a state file that cannot be read is a damaged
run that is still listed, so it can be rejected while the others work normally. What a run writes
holds its agent's output, so it is private (directories 0700, files 0600), and a store given a
redactor (a run's supervisor's) passes every event and record through it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import OrchestraError, RunNotFound
from orchestra.core.base.files import file_lock, write_atomic
from orchestra.core.base.redact import Redactor
from orchestra.core.runs.run import DAMAGED_SHOWN_AS, Run

STATE_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
# On a host: the values of the variables a remote run declares, sent with it (supervise.relay, fleet.hosted).
DECLARED_FILE = "declared.json"
WAITING_DIR = "waiting"  # one empty file per run waiting for a free slot (fleet.placement)


def anything_waits(state_dir: Path) -> bool:
    """Whether a run waits for a slot, seen without reading any run's record."""
    try:
        return any((state_dir / WAITING_DIR).iterdir())
    except FileNotFoundError:
        return False
RUN_ID = re.compile(r"r[1-9][0-9]{0,8}")
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
# Fields of a run record that orchestra itself sets and reads back (ids, refs, paths, the score's settings
# and allowed setup commands): never redacted, so a record stays usable even if a secret's value were in one.
STRUCTURAL_FIELDS = frozenset({"id", "agent", "spec", "branch", "worktree", "base", "target", "candidate", "tree",
                               "merge_commit", "merge_base", "gitdir", "agent_config", "spec_config",
                               "sandbox_config", "setup"})


class DamagedRun(OrchestraError):
    """A run's state file exists but cannot be read; .run is what could be pieced together."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"Run {run.id}'s record is damaged ({run.message}). It can still be rejected.")
        self.run = run


def is_run_id(text: str) -> bool:
    return bool(RUN_ID.fullmatch(text))


class RunStore:
    """Reads and writes run records and event logs under the repository's state dir."""

    def __init__(self, state_dir: Path, redact: Redactor | None = None) -> None:
        self.state_dir = state_dir
        self.runs_dir = state_dir / "runs"
        self.redact = redact or Redactor()  # what a run's supervisor keeps out of its files

    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            shown = run_id if len(run_id) <= 40 else run_id[:40] + "…"
            raise RunNotFound(f"{shown!r} is not a run id (run ids look like r1, r12). "
                              "`orchestra runs` lists the runs.")
        return self.runs_dir / run_id

    def events_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / EVENTS_FILE

    def allocate_id(self, taken: Callable[[str], bool] = lambda _id: False) -> str:
        """A new run id (r1, r2, …), unique across processes and not rejected by taken()."""
        counter = self.state_dir / "next-run-id"
        self.make_private()
        with file_lock(self.state_dir / "ids.lock"):
            number = int(counter.read_text() or "1") if counter.exists() else 1
            while self.run_dir(f"r{number}").exists() or taken(f"r{number}"):
                number += 1
            self.run_dir(f"r{number}").mkdir(mode=PRIVATE_DIR)
            write_atomic(counter, str(number + 1), mode=PRIVATE_FILE)
        return f"r{number}"

    def make_private(self) -> None:
        """Create the state and runs directories owner-only, and make existing ones so."""
        for directory in (self.state_dir, self.runs_dir):
            directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            if stat.S_IMODE(directory.stat().st_mode) != PRIVATE_DIR:
                os.chmod(directory, PRIVATE_DIR)

    def save(self, run: Run) -> None:
        with file_lock(self.run_dir(run.id) / "lock"):
            self._write(run)

    def _write(self, run: Run) -> None:
        record = {key: value if key in STRUCTURAL_FIELDS else self.redact.deep(value)
                  for key, value in run.to_json().items()}
        write_atomic(self.run_dir(run.id) / STATE_FILE, json.dumps(record, indent=1), mode=PRIVATE_FILE)

    def load(self, run_id: str) -> Run:
        """The stored run; RunNotFound when there is none, DamagedRun when its record cannot be read."""
        path = self.run_dir(run_id) / STATE_FILE
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
            return Run.from_json(data)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):  # no record file: no run (run_ids)
            raise RunNotFound(f"There is no run {run_id!r}. `orchestra runs` lists the runs.") from None
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as error:
            raise DamagedRun(self.pieced_together(run_id, error)) from None

    def pieced_together(self, run_id: str, error: Exception) -> Run:
        """A stand-in for a run whose record cannot be read: its id, and what its event log says."""
        reason = f"{STATE_FILE} cannot be read: {type(error).__name__}: {str(error)[:120]}"
        events, _ = self.read_events(run_id)
        first = next((e for e in events if isinstance(e, dict)), {"t": 0.0})
        created = first.get("t") if isinstance(first.get("t"), (int, float)) else 0.0
        return Run(id=run_id, agent="?", spec=None, task="", branch="", worktree="", base="", target="",
                   agent_config={}, spec_config=None, created=created, state=DAMAGED_SHOWN_AS, message=reason,
                   damaged=True)

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

    def run_ids(self) -> list[str]:
        """The ids of every run directory that holds a state file; anything else there is ignored."""
        if not self.runs_dir.is_dir():
            return []
        return [entry.name for entry in self.runs_dir.iterdir()
                if is_run_id(entry.name) and (entry / STATE_FILE).is_file()]

    def strays(self) -> list[str]:
        """Names in the runs directory that are not runs (backups, leftovers): ignored, and shown by doctor."""
        if not self.runs_dir.is_dir():
            return []
        runs = set(self.run_ids())
        return sorted(entry.name for entry in self.runs_dir.iterdir() if entry.name not in runs)

    def list(self) -> list[Run]:
        """Every run, oldest first; a run whose record is damaged is listed as such. A directory without a
        record is no run (as in run_ids): each record is read once, its absence found by reading it."""
        if not self.runs_dir.is_dir():
            return []
        runs = []
        for name in os.listdir(self.runs_dir):
            if not is_run_id(name):
                continue
            try:
                runs.append(self.load(name))
            except DamagedRun as damaged:
                runs.append(damaged.run)
            except RunNotFound:
                continue  # no record, or removed meanwhile
        return sorted(runs, key=lambda run: (run.created, run.id))

    def replace_damaged(self, run: Run) -> None:
        """Write a fresh record for a damaged run, keeping the unreadable one beside it."""
        with file_lock(self.run_dir(run.id) / "lock"):
            path = self.run_dir(run.id) / STATE_FILE
            if path.exists():
                os.replace(path, path.with_name(f"{STATE_FILE}.damaged-{int(time.time())}"))
            self._write(run)

    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Append events (each stamped with a time) as JSON lines in one write."""
        if not events:
            return
        now = time.time()
        data = "".join(json.dumps(self.redact.deep({"t": now, **event}), ensure_ascii=False) + "\n"
                       for event in events)
        fd = os.open(self.events_path(run_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
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
        for line in data[:end].split(b"\n"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events, offset + end
