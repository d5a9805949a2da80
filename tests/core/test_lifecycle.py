"""One lifecycle: the states, the moves between them, and the only code that writes a run's state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestra.core.runs.lifecycle import (ACTIONS, DECIDED, TRANSITIONS, TransitionRefused, allowed, create,
                                           refusal, transition)
from orchestra.core.runs.run import STATES, Run
from orchestra.core.runs.store import RunStore

SRC = Path(__file__).resolve().parents[2] / "src" / "orchestra"
WRITES_STATE = re.compile(r"\.state\s*=(?!=)|\bstate\s*=\s*[\"'][a-z]+[\"']|[\"']type[\"']\s*:\s*[\"']state[\"']")


def new_run(store: RunStore) -> Run:
    run_id = store.allocate_id()
    return create(store, Run(id=run_id, agent="a", spec=None, task="t", branch="b", worktree="/nowhere", base="0",
                             target="main", agent_config={}, spec_config=None))


def test_the_table_covers_every_state_and_only_decisions_end_a_run() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert DECIDED == {"accepted", "rejected"}
    assert all(onward <= set(STATES) for onward in TRANSITIONS.values())
    assert all(states <= set(STATES) for states in ACTIONS.values())


def test_transition_writes_the_state_and_its_event_together(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = new_run(store)

    moved = transition(store, run.id, "working", "", started=1.0)

    assert moved.state == "working" and store.load(run.id).started == 1.0
    events, _ = store.read_events(run.id)
    assert [(e["state"], e["message"]) for e in events] == [("queued", ""), ("working", "")]


def test_a_move_the_table_does_not_allow_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = new_run(store)
    transition(store, run.id, "working")
    transition(store, run.id, "review")
    transition(store, run.id, "rejected", "no")

    with pytest.raises(TransitionRefused, match="rejected; it cannot become review"):
        transition(store, run.id, "review")  # a supervisor finishing after the conductor rejected the run
    with pytest.raises(TransitionRefused):
        transition(store, run.id, "failed", expect=frozenset({"working"}))

    assert store.load(run.id).state == "rejected"
    assert [e["state"] for e in store.read_events(run.id)[0]] == ["queued", "working", "review", "rejected"]


@pytest.mark.parametrize("state", STATES)
def test_allowed_and_refusal_are_read_from_the_table(tmp_path: Path, state: str) -> None:
    run = Run(id="r1", agent="a", spec=None, task="t", branch="b", worktree="/w", base="0", target="main",
              agent_config={}, spec_config=None, state=state)
    for action, states in ACTIONS.items():
        assert allowed(action, run) == (state in states)
        if state not in states:
            assert "Run r1" in refusal(action, run)
    assert allowed("shell", run) == (state not in DECIDED)


def test_nothing_but_the_lifecycle_writes_a_runs_state() -> None:
    """Statically: no module but runs/lifecycle.py assigns a state, passes one to a store, or logs a state event."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "lifecycle.py" or "ui" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if WRITES_STATE.search(line) and "activity" not in line:
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []


def a_run(state: str) -> Run:
    return Run(id="r1", agent="a", spec=None, task="t", branch="b", worktree="/w", base="0", target="main",
               agent_config={}, spec_config=None, state=state)


def test_each_refusal_is_written_in_plain_english() -> None:
    assert refusal("stop", a_run("review")) == "Run r1 is not working (it is in review): there is no agent to stop."
    assert refusal("redirect", a_run("queued")) == ("Run r1 cannot be redirected while it is queued: its agent "
                                                    "has not started yet.")
    assert refusal("accept", a_run("failed")).startswith("Run r1 has failed: only a run in review can be accepted.")
    assert refusal("accept", a_run("stopped")).startswith("Run r1 was stopped: only a run in review")
    assert refusal("accept", a_run("waiting")).startswith("Run r1 is still waiting for input:")


@pytest.mark.parametrize("state", STATES)
def test_no_refusal_glues_a_verb_or_a_state_into_a_broken_sentence(state: str) -> None:
    broken = re.compile(r"stoped|shelled|accepted while|\bis (review|failed|stopped|interrupted)\b|"
                        r"\bit is (review|failed|stopped|interrupted|accepted|rejected)\b")
    for action in (*ACTIONS, "shell"):
        run = a_run(state)
        if not allowed(action, run):
            assert not broken.search(refusal(action, run)), refusal(action, run)


def test_a_state_event_says_its_state_once() -> None:
    from orchestra.core.runs.lifecycle import event_text
    assert event_text("stopped", "stopped by the conductor") == "stopped by the conductor"
    assert event_text("accepted", "accepted by Ann") == "accepted by Ann"
    assert event_text("failed", "the agent exited with status 1") == "failed: the agent exited with status 1"
    assert event_text("failed", "failed_setup odd") == "failed: failed_setup odd"
    assert event_text("review", "") == "review"
