"""Best-of-N: the candidates of one group of runs side by side, ranked on evidence, and the group decision.

A group is the runs one spawn started (`orchestra spawn SPEC --n 3`). Its candidates are ranked by what
was checked, never by a model's opinion alone: first the gates (failed, then not yet green and fresh),
then the open findings (P0 first), then the size of the diff (smaller first), then the time taken. A
review verdict is one gate among the others.

Choosing one accepts it (the ordinary accept: refused when it is not ready unless forced, an approval
under an approval rule) and rejects every other undecided candidate with the reason "another candidate
chosen: rN"; each entry names the group decision, and the rejects name the accept's entry. Choosing again
after a crash between the accept and the rejects finishes the rejects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused, OrchestraError
from orchestra.core.base.findings import PRIORITIES, counts
from orchestra.core.policy import gate_reason, open_findings
from orchestra.core.runs.run import DECIDED_STATES, Run, group_of

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

CHOSEN_REASON = "another candidate chosen: {run}"


@dataclass(frozen=True)
class Candidate:
    """One run of a group as the comparison shows it; `rank` is 1 for the best on evidence."""

    run: Run
    rank: int
    failed: tuple[str, ...]      # gates that failed or could not run
    waiting: tuple[str, ...]     # gates missing, pending, running or stale
    passed: int                  # gates green on the current tree
    findings: dict[str, int]     # open findings by priority (the conductor's comments left out)
    verdicts: tuple[str, ...]    # each reviewer's verdict, "waiting" until it has one
    same_tree: tuple[str, ...]   # other candidates of the group whose tree is identical
    elapsed: float               # seconds the agent worked

    @property
    def ready(self) -> bool:
        return not self.failed and not self.waiting

    @property
    def lines(self) -> int:
        return self.run.lines_added + self.run.lines_removed

    @property
    def tokens(self) -> int | None:
        usage = self.run.usage or {}
        parts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens")]
        return sum(p for p in parts if isinstance(p, int)) if any(isinstance(p, int) for p in parts) else None

    @property
    def cost(self) -> float | None:
        value = (self.run.usage or {}).get("cost")
        return float(value) if isinstance(value, (int, float)) else None

    def cells(self) -> dict[str, str]:
        """The comparison's columns as text, shared by `orchestra compare` and the compare screen."""
        run = self.run
        gates = (f"{self.passed} green" if self.ready else
                 f"✗ {', '.join(self.failed)}" if self.failed else f"{self.passed} green, {len(self.waiting)} waiting")
        found = " ".join(f"{p}:{n}" for p, n in self.findings.items() if n) or "none"
        minutes, seconds = divmod(int(self.elapsed), 60)
        return {"rank": str(self.rank), "run": run.id, "agent": run.agent, "state": run.state, "gates": gates,
                "findings": found, "review": ", ".join(self.verdicts) or "-",
                "diff": f"{run.files_changed}f +{run.lines_added} -{run.lines_removed}",
                "tokens": f"{self.tokens:,}" if self.tokens is not None else "-",
                "cost": f"${self.cost:.2f}" if self.cost is not None else "-", "time": f"{minutes}:{seconds:02d}",
                "same": f"= {', '.join(self.same_tree)}" if self.same_tree else ""}

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {"rank": self.rank, "run": run.id, "agent": run.agent, "state": run.state, "ready": self.ready,
                "gates": {"passed": self.passed, "failed": list(self.failed), "waiting": list(self.waiting)},
                "findings": self.findings, "verdicts": list(self.verdicts),
                "diff": {"files": run.files_changed, "added": run.lines_added, "removed": run.lines_removed},
                "tokens": self.tokens, "cost": self.cost, "elapsed": round(self.elapsed, 1),
                "tree": run.tree, "same_tree": list(self.same_tree)}


@dataclass(frozen=True)
class Comparison:
    """A group's candidates, best first."""

    group: str
    spec: str | None
    candidates: tuple[Candidate, ...]

    @property
    def chosen(self) -> Run | None:
        """The candidate accepted, once the group is decided."""
        return next((c.run for c in self.candidates if c.run.state == "accepted"), None)

    @property
    def open(self) -> tuple[Candidate, ...]:
        """The candidates still undecided."""
        return tuple(c for c in self.candidates if c.run.state not in DECIDED_STATES)

    def to_json(self) -> dict[str, Any]:
        chosen = self.chosen
        return {"group": self.group, "spec": self.spec, "chosen": chosen.id if chosen else None,
                "candidates": [candidate.to_json() for candidate in self.candidates]}


COLUMNS = ("rank", "run", "agent", "state", "gates", "findings", "review", "diff", "tokens", "cost", "time", "same")


def members(runs: list[Run], name: str) -> tuple[str, list[Run]]:
    """The group called name (a group id, or the id of any of its runs) and its runs of runs, oldest first."""
    by_id = {run.id: run for run in runs}
    group = group_of(by_id[name]) if name in by_id else name
    found = sorted((run for run in runs if group_of(run) == group), key=lambda run: run.created)
    if not found:
        groups = sorted({group_of(run) for run in runs if run.group}, key=lambda g: (len(g), g))
        known = ", ".join(groups[-8:]) or "none"
        raise OrchestraError(f"There is no run or group {name!r} (groups: {known}).")
    return group, found


def compare(fleet: Fleet, name: str, now: float) -> Comparison:
    """The group's candidates, ranked on evidence."""
    return compare_runs(fleet.runs(), name, now)


def compare_runs(runs: list[Run], name: str, now: float) -> Comparison:
    """The candidates of the group called name among runs, ranked on evidence."""
    group, found = members(runs, name)
    ranked = sorted((_candidate(run, found, now) for run in found), key=rank_key)
    candidates = tuple(dataclasses.replace(c, rank=i) for i, c in enumerate(ranked, 1))
    return Comparison(group, found[0].spec, candidates)


def rank_key(candidate: Candidate) -> tuple:
    """Evidence first: failed gates, gates not green, findings from P0 down, diff size, then time taken. A run
    still working comes after those with a candidate to judge, and one with nothing to merge (failed, stopped,
    rejected, or no change) last."""
    findings = tuple(candidate.findings.get(p, 0) for p in PRIORITIES)
    return (standing(candidate.run), len(candidate.failed), len(candidate.waiting), findings,
            candidate.lines, candidate.elapsed, candidate.run.created)


def standing(run: Run) -> int:
    """0: a candidate to judge (in review, or accepted); 1: still being made; 2: nothing to merge."""
    if run.candidate is None or not run.files_changed:
        return 2
    return 0 if run.state in ("review", "accepted") else 1 if run.is_active else 2


def _candidate(run: Run, group: list[Run], now: float) -> Candidate:
    failed, waiting, passed = [], [], 0
    for name in run.expected_gates():
        gate = run.gates.get(name)
        if gate_reason(run, name, gate) is None:
            passed += 1
        elif gate is not None and gate.status in ("failed", "error") and not gate.is_stale(run.tree):
            failed.append(name)
        else:
            waiting.append(name)
    found = counts(f for f in open_findings(run) if f.source != "comment")
    verdicts = tuple((run.gates[g].verdict or run.gates[g].status) if g in run.gates else "waiting"
                     for g in run.expected_gates() if g.startswith("review-"))
    same = tuple(other.id for other in group if other.id != run.id and run.tree and other.tree == run.tree)
    return Candidate(run, 0, tuple(failed), tuple(waiting), passed, found, verdicts, same, run.elapsed(now))


@dataclass(frozen=True)
class Choice:
    """What choosing a candidate did: the accept (or the approval it recorded) and the runs it rejected."""

    chosen: Run
    rejected: tuple[Run, ...]

    @property
    def merged(self) -> bool:
        return self.chosen.state == "accepted"


def choose(fleet: Fleet, name: str, run_id: str, actor: str, force: bool = False) -> Choice:
    """Accept run_id of the group and reject its other undecided candidates, linked as one group decision."""
    group, runs = members(fleet.runs(), name)
    chosen = next((run for run in runs if run.id == run_id), None)
    if chosen is None:
        raise ActionRefused(f"Run {run_id} is not a candidate of group {group} "
                            f"({', '.join(run.id for run in runs)}). Nothing was changed.")
    others = [run.id for run in runs if run.id != run_id]
    if chosen.state != "accepted":
        if any(run.state == "accepted" for run in runs if run.id != run_id):
            taken = next(run.id for run in runs if run.state == "accepted")
            raise ActionRefused(f"Group {group} is decided already: {taken} was accepted. Nothing was changed.")
        link = {"group_decision": {"group": group, "chosen": run_id, "others": others}}
        chosen = fleet.decisions.accept(run_id, actor, chosen.candidate, force, extra_fields=link)
        if chosen.state != "accepted":  # an approval under [[approvals]]: the others wait for the merge
            return Choice(chosen, ())
    accept_hash = (chosen.decision or {}).get("ledger_hash")
    rejected = []
    for run in fleet.runs():
        if run.id in others and run.state not in DECIDED_STATES:
            rejected.append(fleet.decisions.reject(
                run.id, actor, CHOSEN_REASON.format(run=run_id),
                {"group_decision": {"group": group, "chosen": run_id, "accept_entry": accept_hash}}))
    return Choice(chosen, tuple(rejected))

