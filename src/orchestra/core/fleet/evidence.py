"""What a decision records: the ledger entry's fields and the accept's merge commit message.

Both name the decision's id, so the ledger and git can be checked against each other."""

from __future__ import annotations

import hashlib
from typing import Any

from orchestra.core.base.canonical import content_hash
from orchestra.core.runs.run import Run

USAGE_KEYS = ("model", "prompt_tokens", "completion_tokens", "cost", "turns")


def entry_fields(action: str, run: Run, actor: str, decision: str, patch: str,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """The ledger entry of a decision on run: who, what exactly (candidate, diff, tree), against which
    spec, with which evidence (the gates as they stood)."""
    fields: dict[str, Any] = {
        "action": action, "decision": decision, "run": run.id, "agent": run.agent, "actor": actor,
        "spec": run.spec, "spec_hash": content_hash(run.spec_config) if run.spec_config else None,
        "task": run.task, "target": run.target, "base": run.base, "merge_base": run.merge_base or run.base,
        "candidate": run.candidate, "tree": run.tree,
        "diff_sha256": hashlib.sha256(patch.encode("utf-8")).hexdigest(),
        "files": run.changed_paths,
        "gates": [{**gate.evidence(), "stale": gate.is_stale(run.tree)} for gate in run.gates.values()],
    }
    if (run.spec_config or {}).get("source"):  # a spec file: the exact version of it the run was held to
        fields["spec_file"] = run.spec_config["source"]
        fields["spec_file_sha256"] = run.spec_config.get("source_sha256")
    if run.group:
        fields["group"] = run.group  # runs started together: orchestra stats compares their candidates
    if run.review_since is not None:
        fields["review_since"] = run.review_since  # from here to the entry's time is the conductor's
    if run.escapes:
        fields["escapes"] = [escape["what"] for escape in run.escapes]
    if run.sandbox is not None:  # whether the agent was contained, as the evidence the conductor saw
        fields["sandbox"] = run.sandbox
    if run.host:  # its agent and gates ran at another host: the gates' results are that host's word
        fields["host"] = {"name": run.host, "ssh": (run.remote or {}).get("ssh")}
    if run.workflow:  # the stages that made the candidate, and the plan they followed
        flow = run.workflow
        fields["workflow"] = {"name": flow.get("name"), "at": flow.get("at", 0) + 1,
                              "stages": [{"name": s.get("name"), "agent": s.get("agent"), "role": s.get("role")}
                                         for s in flow.get("stages") or []],
                              "plan_sha256": (flow.get("plan") or {}).get("sha256")}
    if run.damaged:
        fields["damaged"] = True
    if run.usage:  # llm agents: what the work cost (cost None: the price map does not know the model)
        fields["usage"] = {key: run.usage.get(key) for key in USAGE_KEYS}
    fields.update(extra)
    return fields


def merge_message(run: Run, actor: str, decision: str, granted_by: str | None = None,
                  approvers: tuple[str, ...] | list[str] = ()) -> str:
    """The accept's merge commit message; its trailers name the run and the decision, an accept by policy
    the human who granted the autonomy (Orchestra-Autonomy), and approval rules' approvers (Approved-By)."""
    subject = f"Accept orchestra run {run.id}: {run.spec or 'task'} by {run.agent}"
    autonomy = f"Orchestra-Autonomy: auto, granted by {granted_by}\n" if granted_by else ""
    approved = "".join(f"Approved-By: {who}\n" for who in approvers)
    return (f"{subject}\n\n{run.task}\n\nOrchestra-Run: {run.id}\nOrchestra-Spec: {run.spec or '-'}\n"
            f"Orchestra-Agent: {run.agent}\nOrchestra-Decision: {decision}\nAccepted-By: {actor}\n{autonomy}{approved}")


def revert_fields(run: Run, actor: str, decision: str, reason: str, revert_commit: str) -> dict[str, Any]:
    """The ledger entry of a revert: which accept it undoes (its entry's hash and decision, its merge), the
    revert commit, who and why."""
    accept = run.decision or {}
    return {"action": "revert", "decision": decision, "run": run.id, "agent": run.agent, "actor": actor,
            "spec": run.spec, "target": run.target, "reason": reason, "reverts": accept.get("ledger_hash"),
            "reverts_decision": accept.get("id"), "reverted_merge": run.merge_commit, "revert_commit": revert_commit}


def revert_message(run: Run, actor: str, decision: str, reason: str) -> str:
    """The revert commit's message; its trailers name the run, this decision and the accept it undoes (no
    Orchestra-Decision trailer: that marks an accept's merge, which `ledger verify` pairs with its entry)."""
    subject = f"Revert orchestra run {run.id}: {run.spec or 'task'} by {run.agent}"
    why = f"\n\n{reason}" if reason else ""
    return (f"{subject}\n\nThis reverts merge {run.merge_commit}, which accepted the run.{why}\n\n"
            f"Orchestra-Run: {run.id}\nOrchestra-Revert: {decision}\n"
            f"Reverts-Decision: {(run.decision or {}).get('id', '-')}\nReverted-By: {actor}\n")
