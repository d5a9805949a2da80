"""The questions every decision asks, answered once for the UI and the command line.

A run is *ready* when every gate it should have has a result, on the tree the run holds now, and
passed: the boundary, the secret scan, each verify command of its spec, and each reviewer's verdict, which
must come from another provider than the author's to count. `a` in the UI and `orchestra accept` ask
the same question; a run that is not ready is refused on the command line (unless forced) and asked
about in the UI, and a forced accept records what was not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.core.base.errors import ActionRefused
from orchestra.core.base.findings import DEFAULT_BLOCK_ON, Finding, blocks, by_priority, counts, findings_of
from orchestra.core.runs.run import SECRETS_GATE, Gate, Run
from orchestra.core.runs.workflow import unfinished


BLOCKING = ("P0", "P1")  # findings that keep a run from an automatic accept
DEMOTING = ("P0",)       # findings that demote its pair


class NotReady(ActionRefused):
    """Accepting was refused by policy: the run's evidence is not complete and green."""

    exit_status = 3

    def __init__(self, run: Run, readiness: Readiness) -> None:
        reasons = "\n".join(f"  • {reason}" for reason in readiness.reasons)
        super().__init__(f"Run {run.id} is not ready to accept:\n{reasons}\n"
                         "Nothing was changed. Wait for the gates, redirect the run, or accept with --force "
                         "(the ledger records a forced accept and what was not ready).")
        self.readiness = readiness


@dataclass(frozen=True)
class Readiness:
    """Whether a run may be accepted without asking, and if not, why (one reason per gate)."""

    reasons: tuple[str, ...]
    unready: tuple[dict[str, object], ...]  # the gates that are not green and fresh, as the ledger records them

    @property
    def ready(self) -> bool:
        return not self.reasons


def readiness(run: Run) -> Readiness:
    """Whether every expected gate passed on the run's current tree (and its workflow, if any, finished), and
    the reasons when not."""
    reasons, unready = [], []
    why = unfinished(run)
    if why:
        reasons.append(why)
        unready.append({"name": "workflow", "status": (run.workflow or {}).get("status"), "stale": False,
                        "reason": why})
    for name in run.expected_gates():
        gate = run.gates.get(name)
        reason = gate_reason(run, name, gate)
        if reason:
            reasons.append(reason)
            unready.append({"name": name, "status": gate.status if gate else "missing",
                            "stale": bool(gate and gate.is_stale(run.tree)), "reason": reason})
    return Readiness(tuple(reasons), tuple(unready))


def gate_reason(run: Run, name: str, gate: Gate | None) -> str | None:
    """Why one gate keeps the run from being ready, or None when it is green and fresh."""
    if gate is None:
        return f"gate {name} has not run"
    if gate.is_stale(run.tree) or (gate.tree is None and run.tree is not None):
        return f"gate {name} is stale: it ran on an older tree"
    if gate.status in ("pending", "running"):
        return f"gate {name} is still {gate.status}"
    if gate.status == "passed" and gate.kind == "review" and gate.details.get("same_provider"):
        return (f"gate {name} approved, but from the author's own provider ({gate.details.get('provider')}): not an "
                "independent second opinion ([review] independence = \"none\")")
    if gate.status == "passed":
        return None
    if gate.kind == "boundary" and gate.failures:
        shown = ", ".join(gate.failures[:8]) + (f" and {len(gate.failures) - 8} more" if len(gate.failures) > 8 else "")
        return f"gate boundary failed: {shown}"
    detail = f" ({', '.join(gate.failures[:5])})" if gate.failures else ""
    # A gate's name is a word inside the sentence ("gate pytest failed"), whatever the name looks like.
    outcome = {"error": "could not run"}.get(gate.status, gate.status)
    return f"gate {name} {outcome}: {gate.summary or 'no summary'}{detail}"


# -- evidence and findings: what the conductor sees before deciding ---------------------------------------

@dataclass(frozen=True)
class EvidenceItem:
    """One part of a run's evidence line: tests, coverage, boundary, scans, review, findings."""

    label: str
    state: str  # "ok" | "bad" | "pending" | "stale" | "none"
    text: str   # short, e.g. "12 passed", "approved", "P1:2 P2:1"
    counts: tuple[tuple[str, int], ...] = ()  # findings: (priority, how many), highest first, none zero
    same_provider: bool = False  # review: a verdict from the author's own provider




def evidence(run: Run) -> list[EvidenceItem]:
    """The run's evidence line, in a fixed order; a part with nothing behind it is left out."""
    gates = {name: run.gates.get(name) for name in run.expected_gates()}
    items: list[EvidenceItem] = []
    groups = (("tests", lambda g, c: c is not None and not (c.get("coverage") or c.get("benchmark") or c.get("sarif"))),
              ("coverage", lambda g, c: c is not None and bool(c.get("coverage"))),
              ("bench", lambda g, c: c is not None and bool(c.get("benchmark"))),
              ("boundary", lambda g, c: g == "boundary"),
              ("scans", lambda g, c: g == SECRETS_GATE or (c is not None and bool(c.get("sarif")))),
              ("review", lambda g, c: g.startswith("review-") and c is None))
    checks = {c.get("name"): c for c in (run.spec_config or {}).get("verify", []) if isinstance(c, dict)}
    for label, belongs in groups:
        members = [(name, gate) for name, gate in gates.items() if belongs(name, checks.get(name))]
        if members:
            items.append(_group_item(run, label, members))
    found = [finding for finding in open_findings(run) if finding.source != "comment"]  # yours are not evidence
    if found:
        tally = tuple((p, n) for p, n in counts(found).items() if n)
        block_on = (run.review_config or {}).get("block_on", DEFAULT_BLOCK_ON)
        tone = "bad" if any(blocks(f.priority, block_on) for f in found) else "ok"
        items.append(EvidenceItem("findings", tone, " ".join(f"{p}:{n}" for p, n in tally), counts=tally))
    return items


def _group_item(run: Run, label: str, members: list[tuple[str, Gate | None]]) -> EvidenceItem:
    states = []
    for name, gate in members:
        reason = gate_reason(run, name, gate)
        if reason is None:
            states.append("ok")
        elif gate is None or gate.status in ("pending", "running"):
            states.append("pending")
        elif gate.is_stale(run.tree) or (gate.tree is None and run.tree is not None):
            states.append("stale")
        else:
            states.append("bad")
    state = next((s for s in ("bad", "stale", "pending") if s in states), "ok")
    gates = [gate for _, gate in members if gate is not None]
    same = False
    if label == "tests":
        passed = sum(g.passed or 0 for g in gates)
        failed = sum(g.failed or 0 for g in gates)
        text = (f"{failed} failed" if failed else f"{passed} passed" if passed else
                f"{states.count('ok')}/{len(states)} green")
    elif label == "review":
        text = ", ".join(g.verdict or g.status for g in gates) or "waiting"
        same = any(g.details.get("same_provider") for g in gates)
    else:
        text = {"ok": "ok", "bad": "failed", "stale": "stale", "pending": "running"}[state]
        summaries = [g.summary for g in gates if g.summary and label == "coverage"]
        if summaries:
            text = summaries[0]
    return EvidenceItem(label, state, text, same_provider=same)


def open_findings(run: Run) -> list[Finding]:
    """Every finding of the run's gates on its current tree (review, SARIF, secrets), then the conductor's
    unsent comments; sorted by priority."""
    found: list[Finding] = []
    for gate in run.gates.values():
        if gate.findings and not gate.is_stale(run.tree):
            found.extend(findings_of(gate.findings))
    found.extend(findings_of(run.comments))
    return by_priority(found)


@dataclass(frozen=True)
class FeedbackStatus:
    """What became of the findings the last redirect sent back: resolved, remaining, or not known yet."""

    resolved: tuple[Finding, ...]
    remaining: tuple[Finding, ...]
    unknown: tuple[Finding, ...]  # their gates have not run again on the new tree yet (or comments)


def feedback_status(run: Run) -> FeedbackStatus | None:
    """The last redirect's findings against the gates of the run's current tree; None without feedback."""
    if not run.feedback:
        return None
    sent = findings_of(run.feedback[-1].get("findings") or [])
    now = {finding.id for finding in open_findings(run)}
    fresh_sources = {_source_of(gate) for gate in run.gates.values()
                     if not gate.is_stale(run.tree) and gate.status not in ("pending", "running")}
    resolved, remaining, unknown = [], [], []
    for finding in sent:
        if finding.id in now:
            remaining.append(finding)
        elif finding.source in fresh_sources:
            resolved.append(finding)
        else:
            unknown.append(finding)
    return FeedbackStatus(tuple(resolved), tuple(remaining), tuple(unknown))


def _source_of(gate: Gate) -> str:
    """The source its findings carry: review:<agent>, sarif:<check>, secrets, <role>:<agent> (a security agent's)."""
    if gate.kind == "review":
        return f"review:{gate.name.removeprefix('review-')}"
    if gate.kind == "findings":
        return gate.name.replace("-", ":", 1)
    if gate.kind == "secrets":
        return "secrets"
    return f"sarif:{gate.name}"


# -- the autonomy policy's questions (fleet.autopilot): an accept without a human, a demotion ------------------

def demotion_cause(run: Run) -> tuple[str, str] | None:
    """(cause, reason) when the run's current tree shows a boundary violation, a secret or a P0 finding."""
    for gate in run.gates.values():
        if gate.is_stale(run.tree) or gate.status != "failed":
            continue
        if gate.kind == "boundary":
            shown = ", ".join(gate.failures[:5]) or gate.summary
            return "boundary", f"run {run.id} changed files outside its boundary ({shown})"
        if gate.kind == "secrets":
            return "secret", f"run {run.id}'s change holds a secret ({gate.summary or 'secret scan failed'})"
    for finding in open_findings(run):
        if finding.source != "comment" and finding.priority in DEMOTING:
            where = f" at {finding.path}:{finding.line_start}" if finding.path else ""
            return "P0 finding", f"run {run.id} has a {finding.priority} finding{where}: {finding.title}"
    return None


def auto_blockers(run: Run, approvals_needed: int = 0) -> list[str]:
    """Why the policy may not accept the run on its own ([] when it may)."""
    reasons = list(readiness(run).reasons)
    approved = [gate for gate in run.gates.values() if gate.kind == "review" and gate.status == "passed"
                and not gate.is_stale(run.tree) and not gate.details.get("same_provider")]
    if not approved:
        reasons.append("no independent review approved it (an accept by policy needs one: add a reviewer of "
                       "another provider in [review])")
    found = [f for f in open_findings(run) if f.source != "comment" and f.priority in BLOCKING]
    if found:
        reasons.append(f"{len(found)} finding(s) at {'/'.join(BLOCKING)}: {found[0].title}")
    if run.comments:
        reasons.append("the conductor's comments are waiting to be sent")
    if run.escapes:
        reasons.append(f"the agent tried to leave its worktree: {run.escapes[0].get('what')}")
    if approvals_needed:
        reasons.append(f"an approval rule needs {approvals_needed} human approval(s): a policy's accept never "
                       "counts as one")
    return reasons
