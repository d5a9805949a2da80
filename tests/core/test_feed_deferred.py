"""The feed leaves the event logs of runs it is told to defer unread until they are asked for."""

from __future__ import annotations

import time
from pathlib import Path

from orchestra.core.runs.feed import FleetFeed
from orchestra.core.runs.run import DECIDED_STATES, Run
from orchestra.core.runs.store import RunStore


def store_with(tmp_path: Path, states: dict[str, str]) -> RunStore:
    store = RunStore(tmp_path / "state")
    for run_id, state in states.items():
        run = Run(id=run_id, agent="coder", spec=None, task="t", branch=f"b/{run_id}", worktree=str(tmp_path / run_id),
                  base="0" * 40, target="main", agent_config={}, spec_config=None, state=state, created=time.time())
        store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        store.save(run)
        store.append_events(run_id, [{"type": "output", "text": f"{run_id} line {n}"} for n in range(3)])
    return store


def texts(events: list[dict]) -> list[str]:
    return [event["text"] for event in events]


def decided(run: Run) -> bool:
    return run.state in DECIDED_STATES


def test_the_first_read_leaves_deferred_runs_logs_unread(tmp_path: Path, monkeypatch) -> None:
    store = store_with(tmp_path, {"r1": "review", "r2": "accepted", "r3": "rejected"})
    feed = FleetFeed(store, defer=decided)
    read = []
    tail = store.read_events_tail
    monkeypatch.setattr(store, "read_events_tail", lambda run_id, size: (read.append(run_id), tail(run_id, size))[1])
    updates = feed.initial(store.list())
    assert read == ["r1"]
    assert texts(updates["r1"].events) == ["r1 line 0", "r1 line 1", "r1 line 2"]
    assert updates["r2"].run.state == "accepted" and updates["r2"].events == []
    assert feed.deferred == {"r2", "r3"}


def test_tails_read_a_deferred_log_once_and_then_it_is_followed(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"r1": "review", "r2": "accepted"})
    feed = FleetFeed(store, defer=decided)
    feed.initial(store.list())
    store.append_events("r2", [{"type": "note", "text": "r2 later"}])
    assert feed.unread_bytes(["r1", "r2"]) == store.events_path("r2").stat().st_size  # r1 is read already
    # Before its tail is asked for, a change brings the deferred run's state but none of its output.
    assert feed.changed({str(store.events_path("r2"))}) == {}
    assert texts(feed.tails(["r1", "r2"])["r2"]) == ["r2 line 0", "r2 line 1", "r2 line 2", "r2 later"]
    assert feed.tails(["r2"]) == {} and feed.unread_bytes(["r2"]) == 0  # read once
    store.append_events("r2", [{"type": "note", "text": "r2 last"}])
    assert texts(feed.changed({str(store.events_path("r2"))})["r2"].events) == ["r2 last"]


def test_a_feed_told_nothing_reads_every_log(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"r1": "accepted"})
    updates = FleetFeed(store).initial(store.list())
    assert texts(updates["r1"].events) == ["r1 line 0", "r1 line 1", "r1 line 2"]
