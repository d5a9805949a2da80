"""The questions every decision asks, answered once for the UI and the command line.

A run is *ready* when every gate it should have has a result, on the tree the run holds now, and
passed: the boundary and each verify command of its spec. `a` in the UI and `orchestra accept` ask
the same question; a run that is not ready is refused on the command line (unless forced) and asked
about in the UI, and a forced accept records what was not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.core.base.errors import ActionRefused
from orchestra.core.runs.run import Gate, Run


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
    """Whether every expected gate passed on the run's current tree, and the reasons when not."""
    reasons, unready = [], []
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
        return f"{name} has not run"
    if gate.is_stale(run.tree) or (gate.tree is None and run.tree is not None):
        return f"{name} is stale: it ran on an older tree"
    if gate.status in ("pending", "running"):
        return f"{name} is still {gate.status}"
    if gate.status == "passed":
        return None
    if gate.kind == "boundary" and gate.failures:
        shown = ", ".join(gate.failures[:8]) + (f" and {len(gate.failures) - 8} more" if len(gate.failures) > 8 else "")
        return f"boundary failed: {shown}"
    detail = f" ({', '.join(gate.failures[:5])})" if gate.failures else ""
    return f"{name} {gate.status}: {gate.summary or 'no summary'}{detail}"
