"""Accepting an integration candidate: one decision that lists its parts, then the parts closed as merged by it.

The accept is the ordinary one (journalled, its merge planned and applied, one ledger entry, the merge commit
noted), its entry carrying `integration`: the parts, each with its run, candidate and tree. It is refused, with
nothing changed, when a part's run moved on since the integration was built (redirected, rejected, or edited:
its candidate is no longer the one merged), and (exit 3) when a part is not ready — its own gates, its boundary
above all, since the integration is held only to the spec's — unless forced, which the entry records.

Then each part's run is closed as accepted: its work is on the target, merged by that decision, whose id and
ledger hash its record carries. No entry of its own is written: the ledger holds one decision for the whole, and
no part is recorded as rejected when its work was merged. A crash between the accept and closing the parts is
finished by accepting (or integrating) again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused
from orchestra.core.policy import NotReady, Readiness, readiness
from orchestra.core.runs.lifecycle import TransitionRefused, transition
from orchestra.core.runs.run import Run

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet


class PartsNotReady(NotReady):
    """The integration or one of its parts is not ready: nothing was changed (exit 3)."""

    def __init__(self, run: Run, found: Readiness) -> None:
        reasons = "\n".join(f"  • {reason}" for reason in found.reasons)
        ActionRefused.__init__(self, f"Integration {run.id} is not ready to accept:\n{reasons}\nNothing was "
                               "changed. Wait for the gates, redirect a part and integrate again, or accept with "
                               "--force (the ledger records a forced accept and what was not ready).")
        self.readiness = found


def accept_integration(fleet: Fleet, run_id: str, actor: str, expected_candidate: str | None, force: bool,
                       by_policy: bool = False) -> Run:
    """Accept the integration as one decision listing its parts, then close the parts as merged by it."""
    run = fleet.get(run_id)
    if run.state == "accepted":
        return close_parts(fleet, run)
    parts = part_runs(fleet, run)
    check_unchanged(run, parts)
    found = combined_readiness(run, parts)
    if not found.ready and not force:
        fleet.resume_watch(run)
        raise PartsNotReady(run, found)
    extra: dict[str, Any] = {"integration": {"parts": (run.integration or {}).get("parts", [])}}
    unready_parts = [reason for reason in found.reasons if reason.startswith("part ")]
    if unready_parts:
        extra["unready_parts"] = unready_parts
    accepted = fleet.decisions.accept(run_id, actor, expected_candidate, force, by_policy, extra_fields=extra)
    return close_parts(fleet, accepted) if accepted.state == "accepted" else accepted


def part_runs(fleet: Fleet, run: Run) -> list[tuple[dict[str, Any], Run]]:
    """Each part the integration merged (as it recorded it) and its run now."""
    return [(item, fleet.get(item["run"])) for item in (run.integration or {}).get("parts", [])]


def check_unchanged(run: Run, parts: list[tuple[dict[str, Any], Run]]) -> None:
    """Refuse when a part's run is no longer the candidate the integration merged."""
    moved = [f"part {item['part']} ({part.id}) {_moved(item, part)}" for item, part in parts
             if part.state != "review" or part.candidate != item["candidate"]]
    if moved:
        raise ActionRefused(f"Integration {run.id} no longer holds what its parts are: {'; '.join(moved)}. Nothing "
                            f"was changed. Build it again: orchestra integrate {run.group or run.spec}")


def _moved(item: dict[str, Any], part: Run) -> str:
    if part.state != "review":
        return f"is {part.state} now"
    return f"changed since (its candidate is {str(part.candidate)[:10]}, not {str(item['candidate'])[:10]})"


def combined_readiness(run: Run, parts: list[tuple[dict[str, Any], Run]]) -> Readiness:
    """The integration's own readiness, and each part's (its reasons prefixed with the part)."""
    own = readiness(run)
    reasons, unready = list(own.reasons), list(own.unready)
    for item, part in parts:
        found = readiness(part)
        reasons += [f"part {item['part']} ({part.id}): {reason}" for reason in found.reasons]
        unready += [{**gate, "part": item["part"], "run": part.id} for gate in found.unready]
    return Readiness(tuple(reasons), tuple(unready))


def close_parts(fleet: Fleet, run: Run) -> Run:
    """Close each part the accepted integration merged as accepted by its decision (once each), removing its
    worktree unless something in it would be lost; return the integration."""
    with fleet.decisions.deciding():
        for item, part in part_runs(fleet, run):
            if part.state == "accepted":
                continue
            close_part(fleet, run, item, part)
    return fleet.get(run.id)


def close_part(fleet: Fleet, run: Run, item: dict[str, Any], part: Run) -> None:
    """One part's run: its supervisor stopped, its state accepted (by the integration's decision), cleaned."""
    from orchestra.core.supervise.processes import stop_supervisor
    stop_supervisor(part, current=lambda: fleet.store.load(part.id))
    decision = {**(run.decision or {}), "integration": run.id}
    actor = (run.decision or {}).get("actor")
    message = f"merged by integration {run.id}" + (f", accepted by {actor}" if actor else "")
    try:
        closed = transition(fleet.store, part.id, "accepted", message, expect=frozenset({"review"}),
                            decision=decision, merge_commit=run.merge_commit, supervisor_pid=None)
    except TransitionRefused:
        fleet.store.append_events(part.id, [{"type": "note", "text": (
            f"integration {run.id} merged candidate {str(item['candidate'])[:10]} of this part, but the run was "
            f"{fleet.get(part.id).state} by then and was left so")}])
        return
    fleet.clean(closed)
