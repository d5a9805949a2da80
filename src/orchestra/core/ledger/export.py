"""The ledger for an audit: every decision as JSON lines, as CSV rows, or as an in-toto Statement (v1).

Only a ledger that verifies is exported (the caller checks): an auditor must never receive a tampered record
presented as the sign-off. An in-toto Statement's subject is what the decision is about, by digest: an
accept's merge commit and its tree, a revert's commit and its tree, otherwise the candidate the conductor
looked at (or, for a run that never committed anything, its diff). Its predicate is the decision: spec and
its hash, the gates with the trees they ran on, the review's verdict, the actor, the approvals, the ledger
position and the signature.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from orchestra.core.base.canonical import canonical_json

FORMATS = ("jsonl", "csv", "in-toto")
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://orchestra.invalid/decision/v1"  # orchestra's own predicate: no registry serves it
CSV_COLUMNS = ("seq", "time", "action", "run", "agent", "spec", "actor", "granted_by", "approvals", "decision",
               "candidate", "tree", "merge_commit", "revert_commit", "gates", "verdict", "forced", "recovered",
               "signed", "reason", "hash")
# Why a decision was taken, in the field its action records it under.
WHY = ("reason", "instruction")

TreeOf = Callable[[str], "str | None"]  # a commit's tree id (read from git by the caller), None if unknown


def export(entries: Iterable[dict[str, Any]], fmt: str, tree_of: TreeOf) -> Iterator[str]:
    """The entries in format fmt, as lines (each ending in a newline)."""
    if fmt == "jsonl":
        yield from (canonical_json(entry) + "\n" for entry in entries)
    elif fmt == "in-toto":
        yield from (canonical_json(statement(entry, tree_of)) + "\n" for entry in entries)
    elif fmt == "csv":
        yield from csv_lines(entries)
    else:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def statement(entry: dict[str, Any], tree_of: TreeOf) -> dict[str, Any]:
    """One decision as an in-toto Statement v1."""
    return {"_type": STATEMENT_TYPE, "subject": subjects(entry, tree_of), "predicateType": PREDICATE_TYPE,
            "predicate": predicate(entry)}


def subjects(entry: dict[str, Any], tree_of: TreeOf) -> list[dict[str, Any]]:
    """What the decision is about, by digest (a Statement has at least one subject)."""
    action, run = entry.get("action"), entry.get("run")
    commit = entry.get("merge_commit") if action == "accept" else entry.get("revert_commit")
    if isinstance(commit, str) and commit:
        tree = tree_of(commit)
        digest = {"gitCommit": commit, **({"gitTree": tree} if tree else {})}
        return [{"name": f"{action} of {run} on {entry.get('target')}", "digest": digest}]
    candidate, tree = entry.get("candidate"), entry.get("tree")
    if isinstance(candidate, str) and candidate:
        digest = {"gitCommit": candidate, **({"gitTree": tree} if isinstance(tree, str) and tree else {})}
        return [{"name": f"candidate of {run}", "digest": digest}]
    return [{"name": f"diff of {run}", "digest": {"sha256": entry.get("diff_sha256") or "0" * 64}}]


def predicate(entry: dict[str, Any]) -> dict[str, Any]:
    """The decision: who took it, on what evidence, and where it sits in the ledger."""
    gates = entry.get("gates") or []
    return {
        "decision": entry.get("decision"), "action": entry.get("action"), "run": entry.get("run"),
        "agent": entry.get("agent"), "actor": entry.get("actor"), "time": entry.get("time"),
        "spec": {"id": entry.get("spec"), "sha256": entry.get("spec_hash")},
        "target": entry.get("target"), "base": entry.get("merge_base") or entry.get("base"),
        "gates": gates, "review": verdict(gates), "approvals": entry.get("approvals") or [],
        "why": next((entry[key] for key in WHY if entry.get(key)), None),
        "forced": bool(entry.get("forced")), "unready": entry.get("unready") or [],
        "recovered": bool(entry.get("recovered")),
        # An accept by policy: the grant it acted on and who gave it; a demotion: why.
        "autonomy": {"level": entry.get("autonomy"), "granted_by": entry.get("granted_by"), "grant": entry.get("grant")}
        if entry.get("autonomy") else None,
        "demoted": {"cause": entry.get("cause"), "granted_by": entry.get("granted_by")}
        if entry.get("demoted") else None,
        "reverts": {"entry": entry.get("reverts"), "decision": entry.get("reverts_decision"),
                    "merge": entry.get("reverted_merge")} if entry.get("action") == "revert" else None,
        # A workflow's run: its stages and the plan they followed; an approved stage; a best-of-N group decision.
        "workflow": entry.get("workflow") if isinstance(entry.get("workflow"), dict) else None,
        "stage": {"name": entry.get("stage"), "index": entry.get("stage_index"),
                  "plan_sha256": entry.get("plan_sha256"), "plan_edited": entry.get("plan_edited")}
        if entry.get("action") == "advance" else None,
        "group_decision": entry.get("group_decision"),
        "ledger": {"seq": entry.get("seq"), "hash": entry.get("hash"), "prev": entry.get("prev")},
        "signature": {"sig": entry.get("sig"), "signer": entry.get("signer")} if entry.get("sig") else None,
    }


def verdict(gates: list[dict[str, Any]]) -> str | None:
    """The review's verdict among the gates, if a review gate ran."""
    return next((gate.get("verdict") for gate in gates if gate.get("kind") == "review"), None)


def csv_lines(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header, then one row per decision (gates as name:status, separated by spaces)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        gates = entry.get("gates") or []
        row = {**{column: entry.get(column) for column in CSV_COLUMNS},
               "gates": " ".join(f"{gate.get('name')}:{gate.get('status')}" for gate in gates),
               "verdict": verdict(gates), "reason": next((entry[key] for key in WHY if entry.get(key)), None),
               "forced": bool(entry.get("forced")), "recovered": bool(entry.get("recovered")),
               "signed": bool(entry.get("sig")), "approvals": " ; ".join(map(str, entry.get("approvals") or []))}
        writer.writerow(["" if row[column] is None else row[column] for column in CSV_COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.getvalue():
        yield out.getvalue()
