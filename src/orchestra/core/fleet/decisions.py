"""Accept, reject and redirect: journalled before they change anything, completed (or rolled back) after.

Each decision runs under the repository's decide lock, which every git it starts inherits, so the lock
is only free once nothing of the decision is still running. Its steps, each a named fault point:

    accept:   journalled → merged (the target holds the merge) → recorded (ledger) → noted (the entry as
              the merge commit's git note, refs/notes/orchestra) → closed (run state) → cleaned (worktree)
              → journal struck out
    reject:   journalled → recorded → closed → cleaned → journal struck out
    redirect: journalled → recorded → closed (working again) → started (supervisor) → journal struck out
    revert:   journalled → reverted (the target holds the revert commit) → recorded → demoted (a revert
              of an accept by policy demotes its spec and agent to manual) → closed (the accepted run
              marked reverted) → journal struck out

A process killed at any step leaves its journal entry behind. The next orchestra command (or UI start)
converges: an accept whose merge reached the target is completed — exactly one ledger entry, marked
`recovered`, the run accepted — and one whose merge did not is rolled back (nothing was merged, the run
stays in review); a revert likewise, by whether its commit reached the target; a reject or redirect,
which changes nothing irreversible before its ledger entry, is always completed.

An accept whose merge would change nothing on the target (its change is there already, from another run
or by hand; or the run changed nothing) is refused before it is journalled: no commit, no ledger entry,
the run stays in review, and the refusal says "Nothing to merge:" and why. The ledger records what a
decision changed, and each accept entry names the merge commit that carries its decision (`ledger
verify` checks them against git); a run that is already on the target is closed with reject.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused, OrchestraError
from orchestra.core.agents.prompts import feedback_text
from orchestra.core.base.faults import declare, fault_point
from orchestra.core.base.findings import Finding
from orchestra.core.base.files import file_lock
from orchestra.core.git.actor import actor_identity
from orchestra.core.base.canonical import canonical_json
from orchestra.core.git.merge import NothingToMerge, apply_merge, landed, note_commit, plan_merge, plan_revert
from orchestra.core.git.runner import inherit_fds
from orchestra.core.fleet.evidence import entry_fields, merge_message, revert_fields, revert_message
from orchestra.core.fleet.journal import new_decision_id
from orchestra.core.ledger import LedgerError
from orchestra.core.policy import NotReady, readiness
from orchestra.core.runs.lifecycle import allowed, refusal, transition
from orchestra.core.runs.run import Run
from orchestra.core.runs.workflow import awaiting_approval, current
from orchestra.core.supervise.processes import supervisor_alive

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

STEPS = {"accept": ("journalled", "merged", "recorded", "noted", "closed", "cleaned"),
         "reject": ("journalled", "recorded", "closed", "cleaned"),
         "redirect": ("journalled", "recorded", "closed", "started"),
         "advance": ("journalled", "recorded", "closed", "started"),
         "revert": ("journalled", "reverted", "recorded", "demoted", "closed")}
FAULT_POINTS = frozenset(declare(f"{action}.{step}") for action, steps in STEPS.items() for step in steps)
FINAL_STATE = {"accept": "accepted", "reject": "rejected", "redirect": "working", "revert": "accepted",
               "advance": "working"}
MOVES_TARGET = frozenset({"accept", "revert"})  # decisions that move the target branch before their entry


class Decisions:
    """The conductor's decisions on one fleet's runs."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.lock_path = fleet.repo.state_dir / "decide.lock"

    @contextmanager
    def deciding(self) -> Iterator[None]:
        """Hold the decide lock (inherited by every git started meanwhile) after converging what a crash left."""
        with file_lock(self.lock_path) as fd, inherit_fds(fd):
            self._converge()
            yield

    def converge(self, wait: bool = True) -> None:
        """Complete or roll back decisions a killed process left half done (skipped if one is under way)."""
        if not self.fleet.journal.dir.is_dir():
            return
        if not wait:
            try:
                with file_lock(self.lock_path, blocking=False) as fd, inherit_fds(fd):
                    self._converge()
            except BlockingIOError:
                pass  # a decision is under way; it converges first
            return
        with self.deciding():
            pass

    # -- the decisions ------------------------------------------------------------------------
    def accept(self, run_id: str, actor: str, expected_candidate: str | None, force: bool,
               by_policy: bool = False, extra_fields: dict[str, Any] | None = None) -> Run:
        """Merge the run into its target. by_policy: an accept without a human (fleet.autopilot), made only
        when, under the lock, the ledger grants the run's pair "auto" and the run is ready for it; its entry's
        actor is the policy and names the human who granted it. extra_fields: more for its entry (a group
        decision's link, fleet.compare). A run whose workflow waits for the approval of a stage is approved
        instead (advance): the next stage starts."""
        run = self.fleet.get(run_id)
        if not by_policy and awaiting_approval(run):
            return self.advance(run_id, actor)
        if run.integration is not None and "integration" not in (extra_fields or {}):  # one decision for its parts
            from orchestra.core.fleet.integration_accept import accept_integration
            return accept_integration(self.fleet, run_id, actor, expected_candidate, force, by_policy)
        with self.deciding():
            run = self.open("accept", run_id, actor)
            if expected_candidate and run.candidate != expected_candidate:
                self.fleet.resume_watch(run)
                raise ActionRefused(f"Run {run.id} changed since you looked at it: review it again. "
                                    "Nothing was changed.")
            extra: dict[str, Any] = {**(self.policy_fields(run) if by_policy else {}), **(extra_fields or {})}
            ready = readiness(run)
            if not ready.ready and not force:
                self.fleet.resume_watch(run)
                raise NotReady(run, ready)
            waiting, approvers = self.approvals(run, actor, by_policy)
            if waiting is not None:
                return waiting
            if approvers:
                extra["approvals"] = approvers
            decision = new_decision_id()
            candidate = run.candidate or self.fleet.branch_tip(run)
            try:
                plan = plan_merge(self.fleet.repo, run.target, candidate,
                                  merge_message(run, actor, decision, extra.get("granted_by"), approvers),
                                  actor_identity(actor))
            except NothingToMerge as nothing:
                self.fleet.resume_watch(run)
                raise NothingToMerge(nothing.why, f"Nothing was merged or recorded; run {run.id} stays in review. "
                                     f"Reject it to close it (r, or `orchestra reject {run.id}`): its branch "
                                     "is kept.") from None
            except ActionRefused:
                self.fleet.resume_watch(run)
                raise
            extra["merge_commit"] = plan.commit
            if not ready.ready:
                extra.update(forced=True, unready=[gate["reason"] for gate in ready.unready])
            record = self.fleet.journal.begin({
                "id": decision, "action": "accept", "run": run.id, "target": run.target,
                "target_before": plan.target_before, "merge_commit": plan.commit,
                "fields": self.fields("accept", run, actor, decision, extra)})
            fault_point("accept.journalled")
            try:
                apply_merge(self.fleet.repo, plan)
            except ActionRefused:
                self.fleet.journal.finish(decision)
                self.fleet.resume_watch(run)
                raise
            fault_point("accept.merged")
            return self.complete(record)

    def policy_fields(self, run: Run) -> dict[str, Any]:
        """An accept by policy's own fields (the grant it acts on); refused, with the run watched again, when
        the ledger no longer grants its pair "auto" or the run is not ready for an automatic accept."""
        from orchestra.core.fleet.approvals import approvals_needed
        from orchestra.core.fleet.autopilot import auto_blockers, standing_of
        standing = standing_of(self.fleet, run)
        why = ("its spec and agent have no autonomy" if standing is None or standing.level != "auto"
               else "; ".join(auto_blockers(run, approvals_needed(self.fleet, run))))
        if why:
            self.fleet.resume_watch(run)
            raise ActionRefused(f"Run {run.id} was not accepted by policy: {why}. Nothing was changed.")
        assert standing is not None
        return {"autonomy": "auto", "granted_by": standing.granted_by, "grant": standing.grant_hash}

    def approvals(self, run: Run, actor: str, by_policy: bool) -> tuple[Run | None, list[str]]:
        """Under [[approvals]]: record actor's accept as an approval and return the run (still in review) while
        the rules want more; (None, the approvers) when the accept may merge (no rule: nobody; or this approval
        completes them)."""
        from orchestra.core.fleet.approvals import check_approver, status
        found = status(self.fleet, run)
        if not found.applied or by_policy:  # by policy: auto_blockers held it already
            return None, []
        try:
            check_approver(found, run, actor)
        except ActionRefused:
            self.fleet.resume_watch(run)
            raise
        approval = {"actor": actor, "candidate": run.candidate, "time": 0.0}
        after = dataclasses.replace(found, approvals=(*found.approvals, approval))
        if after.satisfied:
            return None, [str(a["actor"]) for a in after.approvals]
        decision = new_decision_id()
        entry = self.fleet.ledger.append(self.fields("approve", run, actor, decision, {
            "approvals": [str(a["actor"]) for a in after.approvals], "needed": after.needed,
            "counted": after.counted, "rules": after.to_json()["rules"]}))
        approval.update(time=entry["time"], ledger_hash=entry["hash"], decision=decision, needed=after.needed,
                        counted=after.counted)
        run = self.fleet.store.update(run.id, lambda r: r.approvals.append(approval))
        alone = (" (whoever started or last redirected a run cannot be its only approver)"
                 if found.excluded and not after.counted else "")
        self.fleet.store.append_events(run.id, [{"type": "note", "text": (
            f"approved by {actor}: {after.line()}; it merges when the approval rules are met{alone}")}])
        self.fleet.resume_watch(run)
        return run, []

    def reject(self, run_id: str, actor: str, reason: str, extra_fields: dict[str, Any] | None = None) -> Run:
        """Close the run, its work kept on its branch. A workflow's stage waiting for approval whose on_reject is
        "retry" is sent back instead: the reason goes to that stage as a redirect."""
        run = self.fleet.get(run_id)
        if awaiting_approval(run) and (current(run) or {}).get("on_reject", "retry") == "retry":
            from orchestra.core.fleet.workflow import rejected_stage_instruction
            return self.record_and_complete("redirect", run_id, actor, {
                "instruction": rejected_stage_instruction(run, reason), "reason": reason,
                "rejected_stage": (current(run) or {}).get("name")})
        return self.record_and_complete("reject", run_id, actor, {"reason": reason, **(extra_fields or {})})

    def advance(self, run_id: str, actor: str) -> Run:
        """Approve the stage the run's workflow waits at (a plan: its sha256 is recorded); the next one starts."""
        from orchestra.core.fleet.workflow import approval_fields
        run = self.fleet.get(run_id)
        return self.record_and_complete("advance", run_id, actor,
                                        approval_fields(run, self.fleet.store.run_dir(run.id)))

    def revert(self, run_id: str, actor: str, reason: str) -> Run:
        """Undo an accepted run's merge on its target with a revert commit; its ledger entry names the accept
        it undoes. Refused, with nothing changed, when later changes to the target conflict with it or the
        user's checkout has uncommitted work in the files it touches."""
        with self.deciding():
            run = self.fleet.get(run_id)
            if not allowed("revert", run):
                raise ActionRefused(refusal("revert", run))
            self.check_recordable()
            decision = new_decision_id()
            plan = plan_revert(self.fleet.repo, run.target, run.merge_commit,
                               revert_message(run, actor, decision, reason), actor_identity(actor))
            # The journal's merge_commit is the commit this decision puts on the target (here the revert):
            # converging checks whether it landed, as for an accept.
            record = self.fleet.journal.begin({
                "id": decision, "action": "revert", "run": run.id, "target": run.target,
                "target_before": plan.target_before, "merge_commit": plan.commit,
                "fields": revert_fields(run, actor, decision, reason, plan.commit)})
            fault_point("revert.journalled")
            try:
                apply_merge(self.fleet.repo, plan, action="revert")
            except ActionRefused:
                self.fleet.journal.finish(decision)
                raise
            fault_point("revert.reverted")
            return self.complete(record)

    def redirect(self, run_id: str, actor: str, instruction: str, findings: Sequence[Finding] = (),
                 comments: Sequence[Finding] = ()) -> Run:
        """Send the agent back to work with an instruction and, as data, findings and line comments; its next
        prompt lists them (feedback_text), the run and the ledger entry keep them."""
        if not instruction.strip() and not findings and not comments:
            raise ActionRefused("A redirect needs an instruction for the agent, or findings or comments to send.")
        extra: dict[str, Any] = {"instruction": feedback_text(instruction, findings, comments)}
        if findings or comments:
            extra.update(message=instruction, findings=[f.to_json() for f in findings],
                         comments=[c.to_json() for c in comments])
        return self.record_and_complete("redirect", run_id, actor, extra)

    def record_and_complete(self, action: str, run_id: str, actor: str, extra: dict[str, Any]) -> Run:
        """A decision with nothing irreversible before its ledger entry (reject, redirect): journal it, do it."""
        with self.deciding():
            run = self.open(action, run_id, actor)
            decision = new_decision_id()
            record = self.fleet.journal.begin({"id": decision, "action": action, "run": run.id,
                                               "fields": self.fields(action, run, actor, decision, extra)})
            fault_point(f"{action}.journalled")
            return self.complete(record)

    # -- the steps ----------------------------------------------------------------------------
    def open(self, action: str, run_id: str, actor: str) -> Run:
        """Check the action is allowed and recordable, then stop the run and commit what it left."""
        run = self.fleet.get(run_id)
        if not allowed(action, run):
            raise ActionRefused(refusal(action, run))
        if action == "advance" and not awaiting_approval(run):
            raise ActionRefused(f"Run {run.id}'s workflow waits for no approval now. Nothing was changed.")
        self.check_recordable()
        return self.fleet.settle(run, for_accept=action == "accept", actor=actor)

    def check_recordable(self) -> None:
        """Refuse, before anything changes, a decision the ledger could not record."""
        try:
            self.fleet.ledger.check_appendable()
        except LedgerError as error:
            raise ActionRefused(f"The sign-off ledger cannot record this decision: {error}.\n"
                                f"Nothing was changed. `orchestra ledger verify` shows what is wrong "
                                f"with {self.fleet.ledger.path}.") from None

    def fields(self, action: str, run: Run, actor: str, decision: str, extra: dict[str, Any]) -> dict[str, Any]:
        patch = self.fleet.diff(run) if not run.damaged else ""
        return entry_fields(action, run, actor, decision, patch, extra)

    def complete(self, record: dict[str, Any], recovering: bool = False) -> Run:
        """Carry a journalled decision through its remaining steps; each step is skipped when done."""
        action, decision = record["action"], record["id"]
        entry = self.fleet.find_entry(decision) if recovering else None
        if entry is None:
            fields = dict(record["fields"], recovered=True) if recovering else record["fields"]
            entry = self.fleet.ledger.append(fields)
        fault_point(f"{action}.recorded")
        if action == "accept":  # the sign-off travels with the merge commit (a recovery writes it again)
            note_commit(self.fleet.repo, record["merge_commit"], canonical_json(entry) + "\n",
                        actor_identity(entry["actor"]))
            fault_point("accept.noted")
        if action == "revert":
            self.demote_reverted(record)
            fault_point("revert.demoted")
        run = self.close(record, entry)
        fault_point(f"{action}.closed")
        if action in ("redirect", "advance"):
            if not supervisor_alive(run):
                run = self.fleet.start(run.id)
            fault_point(f"{action}.started")
        elif action != "revert":  # a reverted run's worktree went with its accept
            # An accept by policy whose merge holds a tree no gate saw is verified on the target first (the
            # supervisor's "target" mode); its worktree goes after that (fleet.autopilot).
            on_target = self.verify_on_target(record, run)
            run = self.fleet.start(run.id, mode="target") if on_target else self.fleet.clean(run)
            fault_point(f"{action}.cleaned")
        self.fleet.journal.finish(decision)
        self.fleet.dispatch()  # a run decided while it worked frees its slot
        return run

    def verify_on_target(self, record: dict[str, Any], run: Run) -> bool:
        """Whether an accept by policy merged a tree other than the one its gates passed on."""
        if record["action"] != "accept" or record["fields"].get("autonomy") != "auto" or run.target_check:
            return False
        if not Path(run.worktree).is_dir() or not (run.spec_config or {}).get("verify"):
            return False
        from orchestra.core.git.diffs import tree_of
        return tree_of(self.fleet.repo.root, record["merge_commit"]) != run.tree

    def demote_reverted(self, record: dict[str, Any]) -> None:
        """A revert of an accept by policy takes the autonomy away from its spec and agent (once: a recovered
        revert finds the pair demoted already)."""
        from orchestra.core.fleet.autonomy import POLICY_ACTOR, Autonomy
        run = self.fleet.get(record["run"])
        accepted = run.decision or {}
        if accepted.get("actor") != POLICY_ACTOR or not run.spec:
            return
        reverter = record["fields"].get("actor")
        Autonomy(self.fleet).demote(run.spec, run.agent, "revert", (
            f"{reverter} reverted run {run.id}, which the policy had accepted"), run=run.id)

    def close(self, record: dict[str, Any], entry: dict[str, Any]) -> Run:
        """Move the run to the decision's state (once: a recovered decision finds it there already)."""
        action, run = record["action"], self.fleet.get(record["run"])
        if action == "revert":
            return self.close_revert(record, entry, run)
        if run.damaged:
            return self.fleet.close_damaged(run, entry)
        if (run.decision or {}).get("id") == record["id"]:
            return run
        decision = {"id": record["id"], "action": action, "actor": entry["actor"], "time": entry["time"],
                    "reason": entry.get("reason"), "ledger_hash": entry["hash"], "forced": bool(entry.get("forced")),
                    "recovered": bool(entry.get("recovered")), "signed": bool(entry.get("sig"))}
        if entry.get("granted_by"):  # an accept by policy: who granted the autonomy it acted on
            decision["granted_by"] = entry["granted_by"]
        if entry.get("approvals"):
            decision["approvals"] = entry["approvals"]
        if entry.get("group_decision"):  # best-of-N: chosen over the group's other candidates (fleet.compare)
            decision["group_decision"] = entry["group_decision"]
        if entry.get("integration"):  # an integration candidate: the parts it merged (fleet.integration)
            decision["parts"] = [item.get("run") for item in entry["integration"].get("parts", [])]
        values: dict[str, Any] = {"decision": decision, "supervisor_pid": None}
        if action == "accept":
            values["merge_commit"] = record["merge_commit"]
        if action == "advance":
            from orchestra.core.fleet.workflow import advanced
            values["workflow"] = advanced(run, entry)
        if action == "redirect":
            values["redirects"] = [*run.redirects, entry["instruction"]]
            sent = entry.get("comments") or []
            values["feedback"] = [*run.feedback, {
                "message": entry.get("message", entry["instruction"]), "findings": entry.get("findings") or [],
                "comments": sent, "actor": entry["actor"], "time": entry["time"], "tree": run.tree}]
            sent_ids = {item.get("id") for item in sent}
            values["comments"] = [c for c in run.comments if Finding.from_json(c).id not in sent_ids]
        return transition(self.fleet.store, run.id, FINAL_STATE[action], message_for(entry), **values)

    def close_revert(self, record: dict[str, Any], entry: dict[str, Any], run: Run) -> Run:
        """Mark the accepted run reverted (once: a recovered revert finds it marked already)."""
        if (run.reverted or {}).get("id") == record["id"]:
            return run
        reverted = {"id": record["id"], "actor": entry["actor"], "time": entry["time"], "reason": entry.get("reason"),
                    "commit": record["merge_commit"], "ledger_hash": entry["hash"],
                    "recovered": bool(entry.get("recovered")), "signed": bool(entry.get("sig"))}
        return transition(self.fleet.store, run.id, "accepted", message_for(entry), expect=frozenset({"accepted"}),
                          reverted=reverted)

    def _converge(self) -> None:
        try:
            self.fleet.ledger.recover()  # an append cut short by a crash: finished before anything reads it
        except LedgerError:
            pass  # a ledger that cannot be appended to refuses the next decision, with the reason
        for record in self.fleet.journal.pending():
            try:
                if record.get("action") in MOVES_TARGET and not landed(self.fleet.repo, record["target"],
                                                                       record["merge_commit"]):
                    self.roll_back(record)
                else:
                    self.complete(record, recovering=True)
            except OrchestraError:
                continue  # e.g. a ledger that cannot be appended to: it stays journalled; doctor shows it

    def roll_back(self, record: dict[str, Any]) -> None:
        """An accept (or revert) that never reached its target: nothing was merged (or reverted); an accepted
        run is reviewed again."""
        self.fleet.journal.finish(record["id"])
        run = self.fleet.get(record["run"])
        action, actor = record["action"], record["fields"].get("actor")
        text = (f"an accept by {actor} was interrupted before the merge: nothing was merged and nothing recorded; "
                "accept again") if action == "accept" else (
                f"a revert by {actor} was interrupted before it reached {record['target']}: nothing was reverted "
                "and nothing recorded; revert again")
        self.fleet.store.append_events(run.id, [{"type": "note", "text": text}])
        if action == "accept" and run.state == "review" and not supervisor_alive(run) and Path(run.worktree).is_dir():
            self.fleet.resume_watch(run)


def message_for(entry: dict[str, Any]) -> str:
    """The run's message after a decision: who decided, and why."""
    if entry["action"] == "advance":
        what = "the plan" if entry.get("plan_sha256") else f"stage {entry.get('stage')}"
        return f"{what} approved by {entry['actor']}; the next stage starts"
    verb = {"accept": "accepted", "reject": "rejected", "redirect": "redirected", "revert": "reverted"}[entry["action"]]
    reason = f": {entry['reason']}" if entry.get("reason") else ""
    forced = " (forced: not every gate was green)" if entry.get("forced") else ""
    recovered = " (completed on recovery)" if entry.get("recovered") else ""
    granted = f" (autonomy granted by {entry['granted_by']})" if entry.get("granted_by") else ""
    approved = (f" (approvals: {', '.join(str(a).partition(' <')[0] for a in entry['approvals'])})"
                if entry.get("approvals") else "")
    return f"{verb} by {entry['actor']}{granted}{approved}{reason}{forced}{recovered}"
