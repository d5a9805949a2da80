"""What `orchestra review RUN` says: the evidence line, whether the run is ready, each reviewer's verdict,
every open finding (P0 first), and what became of the findings the last redirect sent back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestra.core.base.findings import Finding
from orchestra.core.policy import EvidenceItem, FeedbackStatus, Readiness, evidence, feedback_status, open_findings
from orchestra.core.policy import readiness
from orchestra.core.runs.run import Gate, Run

_MARK = {"ok": "✓", "bad": "✗", "pending": "…", "stale": "~", "none": "-"}


@dataclass(frozen=True)
class ReviewReport:
    run: Run
    ready: Readiness
    evidence: tuple[EvidenceItem, ...]
    reviews: tuple[Gate, ...]
    findings: tuple[Finding, ...]
    feedback: FeedbackStatus | None

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "run": run.id, "state": run.state, "tree": run.tree, "ready": self.ready.ready,
            "reasons": list(self.ready.reasons),
            "evidence": [vars(item) for item in self.evidence],
            "reviews": [{"gate": g.name, "status": g.status, "verdict": g.verdict, "stale": g.is_stale(run.tree),
                         "summary": g.summary, "tree": g.tree, **{k: g.details.get(k) for k in (
                             "agent", "model", "provider", "author_provider", "independence", "same_provider",
                             "prompt_tokens", "completion_tokens", "cost", "explanation")}}
                        for g in self.reviews],
            "findings": [finding.to_json() for finding in self.findings],
            "feedback": None if self.feedback is None else {
                key: [f.to_json() for f in getattr(self.feedback, key)] for key in ("resolved", "remaining", "unknown")},
        }

    def lines(self) -> list[str]:
        run = self.run
        out = [f"Run {run.id} ({run.agent} · {run.spec or 'task'}) {run.state}, tree {(run.tree or '-')[:10]}",
               "  " + "  ".join(f"{item.label} {_MARK.get(item.state, '?')} {item.text}" for item in self.evidence)]
        out.append("  ready: a accepts it at once" if self.ready.ready else
                   "  not ready:\n" + "\n".join(f"    • {reason}" for reason in self.ready.reasons))
        for gate in self.reviews:
            d = gate.details
            stale = " (stale: the tree changed since)" if gate.is_stale(run.tree) else ""
            out.append(f"\nReview by {d.get('agent') or gate.name} ({d.get('model') or d.get('preset') or d.get('kind')}, "
                       f"{d.get('provider') or 'provider unknown'}): {gate.verdict or gate.status}{stale}")
            if gate.verdict is None:
                out.append(f"  {gate.summary}")
            if d.get("same_provider"):
                out.append("  ⚠ same provider as the author: not an independent second opinion")
            if d.get("explanation"):
                out += ["  " + line for line in str(d["explanation"]).splitlines()]
        if self.findings:
            out.append(f"\nFindings ({len(self.findings)}):")
            for f in self.findings:
                origin = "you" if f.source == "comment" else f.source.split(":", 1)[-1]
                out.append(f"  {f.priority} {f.place}  {f.title}  — {origin} [{f.id}]")
                if f.body and f.body != f.title:
                    out += ["      " + line for line in f.body.splitlines()[:6]]
        elif self.reviews or run.gates:
            out.append("\nNo open findings.")
        if self.feedback is not None:
            status = self.feedback
            out.append(f"\nSent with the last redirect: {len(status.resolved)} resolved, {len(status.remaining)} "
                       f"remaining" + (f", {len(status.unknown)} not reviewed again yet" if status.unknown else ""))
            out += [f"  resolved   {f.priority} {f.place}  {f.title}" for f in status.resolved]
            out += [f"  remaining  {f.priority} {f.place}  {f.title}" for f in status.remaining]
        return out


def review_report(run: Run) -> ReviewReport:
    reviews = tuple(gate for gate in run.gates.values() if gate.kind == "review")
    return ReviewReport(run, readiness(run), tuple(evidence(run)), reviews, tuple(open_findings(run)),
                        feedback_status(run))
