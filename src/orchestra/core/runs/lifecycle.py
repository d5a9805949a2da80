"""A run's lifecycle: its states, the transitions between them, and which action each state allows.

This is the only module that writes a run's state: `transition` changes the state file and appends
the state event together, under the run's lock, and refuses a move the table does not allow (a
supervisor finishing a run that the conductor rejected meanwhile, say). `allowed` and `refusal`,
which the keys, the command line and the fleet all ask, are read from the same tables.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from orchestra.core.base.errors import ActionRefused
from orchestra.core.runs.run import Run
from orchestra.core.runs.store import RunStore

# state -> the states it may move to (staying in a state is always allowed: it re-stamps the message).
# "interrupted" is where the fleet puts a run whose supervisor vanished while it was queued or working.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"working", "stopped", "failed", "rejected", "interrupted"}),
    "working": frozenset({"waiting", "review", "failed", "stopped", "rejected", "interrupted"}),
    "waiting": frozenset({"working", "review", "failed", "stopped", "rejected", "interrupted"}),
    "review": frozenset({"accepted", "rejected", "working", "failed"}),
    "failed": frozenset({"working", "rejected"}),
    "stopped": frozenset({"working", "rejected"}),
    "interrupted": frozenset({"working", "rejected"}),
    "accepted": frozenset(),
    "rejected": frozenset(),
}
# action -> the states it can be taken in.
ACTIONS: dict[str, frozenset[str]] = {
    "accept": frozenset({"review"}),
    # Approving a workflow's stage that waits for it (runs.workflow): the next stage starts.
    "advance": frozenset({"review"}),
    "reject": frozenset({"queued", "working", "waiting", "review", "failed", "stopped", "interrupted"}),
    "redirect": frozenset({"working", "waiting", "review", "failed", "stopped", "interrupted"}),
    "stop": frozenset({"queued", "working", "waiting"}),
    # Rewriting the branch under a working agent would pull its files from under it: only while it rests.
    "update": frozenset({"review", "failed", "stopped", "interrupted"}),
    # Published for others to see: work awaiting a decision, or accepted work (its branch is kept).
    "publish": frozenset({"review", "accepted"}),
}
# Where a run's interactive session lives (an agent with session = "interactive"): the conductor attaches to it.
SESSION_STATES = frozenset({"working", "waiting"})
DECIDED = frozenset(state for state, onward in TRANSITIONS.items() if not onward)


class TransitionRefused(ActionRefused):
    """The run is not in a state that may move to the one asked for; nothing was written."""


def can_move(current: str, new: str) -> bool:
    return new == current or new in TRANSITIONS.get(current, frozenset())


def transition(store: RunStore, run_id: str, new: str, message: str = "", *,
               expect: frozenset[str] | None = None, **values: Any) -> Run:
    """Move a run to state new (setting values on it too) and log the state event; return the run.

    expect narrows the states the move may start from (e.g. only a run still working may become
    review); TransitionRefused, with nothing written, when the run is elsewhere."""
    def change(run: Run) -> None:
        if (expect is not None and run.state not in expect) or not can_move(run.state, new):
            raise TransitionRefused(f"Run {run.id} is {run.state}; it cannot become {new}.")
        if new == "review" and run.state != "review":
            run.review_since = time.time()
        run.state, run.message = new, message
        for key, value in values.items():
            setattr(run, key, value)
    run = store.update(run_id, change)
    store.append_events(run_id, [{"type": "state", "state": new, "message": message}])
    return run


def create(store: RunStore, run: Run) -> Run:
    """Write a new run's first record, queued, and its first state event."""
    if run.state != "queued":
        raise TransitionRefused(f"A new run starts queued, not {run.state}.")
    store.save(run)
    store.append_events(run.id, [{"type": "state", "state": "queued", "message": ""}])
    return run


def replace_damaged(store: RunStore, run: Run, new: str, message: str, **values: Any) -> Run:
    """Give a damaged run (whose record could not be read) a fresh record in state new; the unreadable
    record is kept beside it. Only a reject may do this."""
    if not run.damaged or new not in TRANSITIONS["failed"] - {"working"}:
        raise TransitionRefused(f"Run {run.id}'s record cannot be replaced with a {new} one.")
    fresh = dataclasses.replace(run, state=new, message=message, damaged=False, **values)
    store.replace_damaged(fresh)
    store.append_events(run.id, [{"type": "state", "state": new, "message": message}])
    return fresh


# What needs the run's worktree here: a remote run's is at its host (supervise.relay).
AT_HOST_ONLY = frozenset({"shell", "update"})


def allowed(action: str, run: Run | None) -> bool:
    """Whether a decision (accept, reject, redirect), stop or shell can be taken on run now."""
    if run is None:
        return False
    if run.damaged:
        return action == "reject"
    if action in ("accept", "revert") and run.part_of:  # a part merges with the others, through its integration
        return False
    if action in ("redirect", "update") and run.integration is not None:  # no agent's: it is built again instead
        return False
    if action in AT_HOST_ONLY and run.is_remote:  # its worktree is at its host: nothing here to work in
        return False
    if action == "shell":
        return run.state not in DECIDED or run.kept is not None
    if action == "attach":
        return run.state in SESSION_STATES and run.agent_config.get("session") == "interactive"
    if action == "revert":  # undoing an accept's merge, once: a reverted run stays accepted, marked reverted
        return run.state == "accepted" and bool(run.merge_commit) and not run.reverted
    if action == "plan":  # editing a workflow's plan: while it waits for the conductor's approval
        from orchestra.core.runs.workflow import awaiting_approval, current
        return awaiting_approval(run) and (current(run) or {}).get("role") == "plan"
    return run.state in ACTIONS.get(action, frozenset())


def refusal(action: str, run: Run) -> str:
    """Why an action is not available for a run in its current state."""
    if run.damaged:
        return f"Run {run.id}'s record is damaged ({run.message}); it can only be rejected."
    if action in ("accept", "revert") and run.part_of:
        return part_refusal(action, run)
    if action in ("redirect", "update") and run.integration is not None:
        return (f"Run {run.id} is the integration of spec {run.spec}'s parts: no agent works on it. Redirect a part, "
                f"then build the integration again (`orchestra integrate {run.group or run.spec}`).")
    if action in AT_HOST_ONLY and run.is_remote:
        where = (run.remote or {}).get("worktree") or "(not made yet)"
        return (f"Run {run.id} works at host {run.host}: its worktree is there ({where}), not here. Redirect it to "
                "change what it does; ssh there only to look (edits made there by hand are not taken).")
    if action in ("update", "publish"):
        return rest_refusal(action, run)
    if action == "revert" and run.reverted:
        return (f"Run {run.id} was already reverted by {run.reverted.get('actor')} "
                f"({str(run.reverted.get('commit'))[:10]}). Nothing was changed.")
    if action == "revert":
        return f"Run {run.id} {_is(run.state)}: only an accepted run's merge can be reverted. Nothing was changed."
    if action == "plan":
        return f"Run {run.id} has no plan waiting for your approval: a plan is edited before it is approved."
    if run.state in DECIDED:
        suffix = " Its worktree is gone; its branch is kept." if action == "shell" else ""
        return f"Run {run.id} was already {run.state}.{suffix}"
    if run.state == "interrupted":
        return (f"Run {run.id} was interrupted: its supervisor is gone and its agent was ended. Reject it, or "
                "redirect it to carry on.")
    if action == "attach":
        return _no_session(run)
    if action == "accept":
        if run.state in ACTIONS["stop"]:
            return f"Run {run.id} {_is(run.state, still=True)}: wait for the agent to finish, or stop it."
        return f"Run {run.id} {_is(run.state)}: only a run in review can be accepted. Redirect it to try again."
    if action == "stop":
        return f"Run {run.id} is not working (it {_is(run.state)}): there is no agent to stop."
    if action == "redirect" and run.state == "queued":
        return f"Run {run.id} cannot be redirected while it is queued: its agent has not started yet."
    return f"Run {run.id} cannot be {_DONE.get(action, action)} while it {_is(run.state)}."


# How each state reads after "it" or a run's id, and each action's past participle.
_BEING = {"queued": "is queued", "working": "is working", "waiting": "is waiting for input", "review": "is in review",
          "failed": "has failed", "stopped": "was stopped", "interrupted": "was interrupted",
          "accepted": "was accepted", "rejected": "was rejected"}
_DONE = {"advance": "approved", "accept": "accepted", "reject": "rejected", "redirect": "redirected", "stop": "stopped",
         "shell": "opened in a shell", "attach": "attached to"}


def event_text(state: str, message: str) -> str:
    """A state event in words, the state said once: "review", "failed: <why>", and a message that starts
    with the state's own word as it is ("stopped by the conductor", not "stopped: stopped by …")."""
    if not message:
        return state
    return message if message.split(" ", 1)[0] == state else f"{state}: {message}"


def _is(state: str, still: bool = False) -> str:
    """"is in review", "has failed", …; with still, "is still working"."""
    phrase = _BEING.get(state, f"is {state}")
    return phrase.replace("is ", "is still ", 1) if still and phrase.startswith("is ") else phrase


def _no_session(run: Run) -> str:
    """Why there is no interactive session of run to talk to."""
    if run.agent_config.get("session") != "interactive":
        return (f"Run {run.id}'s agent {run.agent} works one turn unattended: there is no session to talk to. "
                f"Set session = \"interactive\" on agent {run.agent} for its next runs.")
    if run.state == "queued":
        return f"Run {run.id} is queued: its session starts once its worktree is ready."
    return (f"Run {run.id}'s session has ended (it {_is(run.state)}). Redirect it (d) to start it again with "
            "an instruction.")


def part_refusal(action: str, run: Run) -> str:
    """Why a part's run cannot be accepted or reverted by itself: the parts merge together, as one integration."""
    part, spec = (run.part_of or {}).get("part"), (run.part_of or {}).get("spec")
    if action == "revert" or run.state == "accepted":
        via = (run.decision or {}).get("integration") or "its integration"
        return f"Run {run.id} (part {part} of spec {spec}) was merged with the other parts by {via}: revert that run."
    return (f"Run {run.id} is part {part} of spec {spec}: the parts merge together. Build their integration "
            f"(`orchestra integrate {run.group or spec}`, once every part is in review) and accept that.")


def rest_refusal(action: str, run: Run) -> str:
    """Why a run cannot be updated onto its target, or published, in its state."""
    if run.state in ACTIONS["stop"]:
        return f"Run {run.id} {_is(run.state, still=True)}: wait for the agent to finish, or stop it, then {action} it."
    if action == "update":
        return f"Run {run.id} {_is(run.state)}: there is nothing left to update."
    return f"Run {run.id} {_is(run.state)}: only a run in review or an accepted one can be published."
