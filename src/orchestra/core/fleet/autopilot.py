"""The autonomy policy applied to one run: accept it when it is ready and its spec and agent were granted
"auto"; demote the pair at once when the run shows what an autonomous agent must never do.

A run's supervisor asks for it (`orchestra policy RUN`, a process of its own: the accept stops the
supervisor) when a gate of a run whose pair the hint file says is "auto" settles: every gate final on the
run's tree, or a gate that demotes. This module then decides from the authorities, under the decide lock
where it acts: the ledger's grants, the score's cap, the run's gates on its current tree.

*Ready for an automatic accept* is more than ready for a human's `a`: every gate green and fresh
(policy.readiness), an independent review among them that approved, no P0 or P1 finding, no comment of
the conductor's waiting to be sent, nothing the agent tried to leave its worktree by, and no approval rule
over the files it changed (an accept by policy never counts as an approval).

*Demoting* (a revoke entry whose actor is the policy, with the cause): a boundary violation, a secret
found, or a P0 finding, on the run's current tree. The run itself stays in review for a human. Other
demotions are where their cause happens: a revert of an automatic accept (decisions.Decisions.revert).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.base.errors import ActionRefused
from orchestra.core.fleet.autonomy import POLICY_ACTOR, Autonomy, Standing
from orchestra.core.policy import auto_blockers, demotion_cause
from orchestra.core.runs.run import Run

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

@dataclass(frozen=True)
class Outcome:
    """What the policy did with a run: "accepted", "demoted", "held" (not ready for it: why) or "manual"."""

    done: str
    text: str
    run: Run | None = None


def standing_of(fleet: Fleet, run: Run) -> Standing | None:
    """The run's pair's standing, or None for a run of no spec or of a pair the score no longer has."""
    if not run.spec:
        return None
    try:
        return Autonomy(fleet).standing(run.spec, run.agent)
    except ActionRefused:
        return None


def warm_up(fleet: Fleet, run_id: str) -> None:
    """Load what applying the policy to the run will need (a warm policy process, supervise.asking): the
    ledger's readers, the decisions and the merge; errors are left for the real question to meet."""
    try:
        standing_of(fleet, fleet.get(run_id))
        fleet.decisions  # noqa: B018  (the decision modules: merge, journal, processes)
        from orchestra.core.fleet import approvals  # noqa: F401
        from orchestra.core.git import merge  # noqa: F401
    except Exception:  # noqa: BLE001 -- asked for real, the same error is reported then
        pass


def apply_policy(fleet: Fleet, run_id: str) -> Outcome:
    """Demote or accept the run as the policy says (the supervisor's `orchestra policy RUN`)."""
    run = fleet.get(run_id)
    if run.state == "accepted" and (run.target_check or {}).get("done"):
        return after_target_check(fleet, run)
    if run.state != "review":
        return Outcome("manual", f"run {run.id} is {run.state}: the policy acts on runs in review only", run)
    standing = standing_of(fleet, run)
    if standing is None or standing.level != "auto":
        return Outcome("manual", f"run {run.id}'s spec and agent have no autonomy: a human decides", run)
    cause = demotion_cause(run)
    if cause is not None:
        with fleet.decisions.deciding():  # one demotion, however many of the run's gates asked at once
            entry = Autonomy(fleet).demote(standing.spec, standing.agent, cause[0], cause[1], run=run.id)
        if entry is None:
            return Outcome("manual", f"{standing.spec}/{standing.agent} was demoted already", run)
        text = f"autonomy of {standing.spec}/{standing.agent} demoted to manual by policy: {cause[1]}"
        fleet.store.append_events(run.id, [{"type": "note", "text": text}])
        return Outcome("demoted", text, run)
    from orchestra.core.fleet.approvals import approvals_needed
    blockers = auto_blockers(run, approvals_needed(fleet, run))
    if run.is_remote and fleet.repo.resolve(run.target) not in (run.merge_base, run.base):
        # The merge would make a tree no gate saw, and the checks of a merge run in the run's worktree, at its host.
        blockers.append(f"it works at host {run.host} and {run.target} moved on since its base: its merge could not "
                        "be checked here; accept it yourself")
    if blockers:
        text = "not accepted by policy: " + "; ".join(blockers)
        held = [e for e in fleet.store.read_events_tail(run.id, 16384)[0] if e.get("type") == "note"][-1:]
        if not held or held[0].get("text") != text:  # said once per reason, not at every pass
            fleet.store.append_events(run.id, [{"type": "note", "text": text}])
        return Outcome("held", text, run)
    accepted = fleet.decisions.accept(run.id, POLICY_ACTOR, run.candidate, force=False, by_policy=True)
    return Outcome("accepted", f"accepted by policy (autonomy granted by {standing.granted_by})", accepted)


def after_target_check(fleet: Fleet, run: Run) -> Outcome:
    """An accept by policy was verified on its target: demote the pair if a check failed there (the merged
    change is not undone: reverting is a human's decision, `orchestra revert`), then remove the worktree."""
    check = run.target_check or {}
    failed = [gate for gate in check.get("gates", []) if gate.get("status") != "passed"]
    outcome = Outcome("verified", f"run {run.id}'s merge passed its checks on {run.target}", run)
    if failed and run.spec:
        names = ", ".join(str(gate.get("name")) for gate in failed)
        reason = (f"{names} failed on {run.target} after the merge by policy of run {run.id} "
                  f"({str(check.get('merge_commit'))[:10]})")
        with fleet.decisions.deciding():
            entry = Autonomy(fleet).demote(run.spec, run.agent, "gate failed after merge", reason, run=run.id)
        text = f"autonomy of {run.spec}/{run.agent} demoted to manual by policy: {reason}" if entry else reason
        fleet.store.append_events(run.id, [{"type": "note", "text": text}])
        outcome = Outcome("demoted", text, run)
    if Path(run.worktree).is_dir():
        fleet.clean(run)
    return outcome
