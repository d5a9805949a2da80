"""A run's output on its way to the event log: lines batched, and bounded in total size."""

from __future__ import annotations

from typing import Any

from orchestra.core.base.output import OUTPUT_LIMIT
from orchestra.core.runs.store import RunStore

EVENT_OVERHEAD = 56  # bytes of JSON around an output line's text in the event log ({"t": …, "type": …})


class EventBuffer:
    """Collects output lines and flushes them to the event log in batches, bounded in total size."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.pending: list[dict[str, Any]] = []
        self.logged_bytes = 0
        self.dropped_bytes = 0

    def line(self, text: str) -> None:
        if self.logged_bytes >= OUTPUT_LIMIT:
            if self.dropped_bytes == 0:
                self.pending.append({"type": "note", "text": "output limit reached: further agent output "
                                     "is counted but not kept (the agent keeps running)"})
            self.dropped_bytes += len(text) + 1
            return
        # Count what the line costs in the log, envelope included: short lines cost ~25x their text.
        self.logged_bytes += len(text.encode("utf-8", "replace")) + EVENT_OVERHEAD
        self.pending.append({"type": "output", "text": text})

    def note(self, text: str) -> None:
        self.pending.append({"type": "note", "text": text})
        self.flush()

    def flush(self) -> None:
        events, self.pending = self.pending, []
        self.store.append_events(self.run_id, events)
