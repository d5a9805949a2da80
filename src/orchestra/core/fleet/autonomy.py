"""Graduated autonomy per spec and agent (issue 12): granted by a named human, read from the ledger.

A level is "manual" (a human decides every run; the default) or "auto" (a ready run may be accepted by
policy). It is granted and revoked only by `orchestra autonomy grant|revoke`, each a ledger entry naming
who: the ledger is the one record of autonomy, so a grant is tamper-evident like every decision, and
nothing in the repository's files can give autonomy. A committed score can only cap it: a spec's
`max_autonomy = "manual"` keeps its runs manual whatever was granted.

orchestra suggests a promotion from the track record (the latest `promote_after` runs of the pair accepted
by a human, ready, never redirected or reverted, with no reject between, since the pair was last demoted),
and never promotes by itself.

It demotes by itself (`demote`): a revoke entry whose actor is the policy, naming the cause and the run.
The policy that accepts ready runs of "auto" pairs, and what demotes them, is fleet.autopilot.

Each grant, revoke and demotion also rewrites `autonomy.json` in the state directory: the pairs granted
"auto", for a run's supervisor to ask cheaply whether asking the policy is worth a process. It is a hint,
never the authority: the policy reads the ledger (and the score's cap) before it accepts anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused
from orchestra.core.runs.hint import write_hint
from orchestra.core.fleet.journal import new_decision_id

if TYPE_CHECKING:  # the ledger's readers (msgspec) load when a standing is read, not for a supervisor's hint
    from orchestra.core.fleet.fleet import Fleet
    from orchestra.core.ledger.fields import DecisionFields

CHANGES = ("grant", "revoke")  # ledger actions that set a pair's level
POLICY_ACTOR = "policy"  # the actor of an accept or a demotion made by policy, not by a human


@dataclass(frozen=True)
class Standing:
    """One spec and agent: what was granted, by whom, the score's cap, and the track record."""

    spec: str
    agent: str
    granted: str          # "manual" or "auto", as last granted or revoked
    granted_by: str | None
    grant_hash: str | None  # the ledger entry of the grant (or revoke) that set granted
    cap: str              # the spec's max_autonomy
    streak: int           # the latest runs in a row accepted by a human, ready, not redirected or reverted
    promote_after: int
    streak_runs: tuple[str, ...] = ()  # those runs, oldest first

    @property
    def level(self) -> str:
        """The autonomy that applies: what was granted, under the score's cap."""
        return "auto" if self.granted == "auto" and self.cap == "auto" else "manual"

    @property
    def suggest_promotion(self) -> bool:
        return self.level == "manual" and self.cap == "auto" and self.streak >= self.promote_after

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "agent": self.agent, "level": self.level, "granted": self.granted,
                "granted_by": self.granted_by, "grant_hash": self.grant_hash, "cap": self.cap, "streak": self.streak,
                "promote_after": self.promote_after, "suggest_promotion": self.suggest_promotion,
                "streak_runs": list(self.streak_runs)}


class Autonomy:
    """The fleet's autonomy levels: granted and revoked through the ledger, capped by the score."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def standings(self) -> list[Standing]:
        """Every spec and agent the score pairs, in its order."""
        score = self.fleet.score
        if score is None:
            return []
        grants, streaks = self._read()
        found = []
        for spec in score.specs:
            for agent in score.agents_for(spec):
                granted = grants.get((spec.id, agent.name), {})
                record = streaks.get((spec.id, agent.name), ())
                found.append(Standing(spec.id, agent.name, granted.get("level", "manual"), granted.get("actor"),
                                      granted.get("hash"), spec.max_autonomy, len(record), score.promote_after,
                                      record))
        write_hint(self.fleet.repo.state_dir, grants)
        return found

    def standing(self, spec: str, agent: str) -> Standing:
        """One pair's standing; ActionRefused, naming the score's pairs, for a pair it does not have."""
        for found in self.standings():
            if (found.spec, found.agent) == (spec, agent):
                return found
        pairs = ", ".join(f"{s.spec}/{s.agent}" for s in self.standings()) or "none"
        raise ActionRefused(f"The score has no spec {spec!r} run by agent {agent!r} (its pairs: {pairs}). "
                            "Nothing was changed.")

    def grant(self, spec: str, agent: str, actor: str, reason: str = "") -> dict[str, Any]:
        """Give the pair "auto", recorded as a ledger entry naming actor; refused where the score caps it."""
        standing = self.standing(spec, agent)
        if standing.cap != "auto":
            raise ActionRefused(f"The score caps spec {spec!r} at {standing.cap!r} (max_autonomy): a committed file "
                                "can lower autonomy, never raise it, and this cap stands until the score changes. "
                                "Nothing was changed.")
        if standing.granted == "auto":
            raise ActionRefused(f"{spec}/{agent} already has autonomy auto, granted by {standing.granted_by}. "
                                "Nothing was changed.")
        return self._record("grant", standing, "auto", actor, reason)

    def revoke(self, spec: str, agent: str, actor: str, reason: str = "") -> dict[str, Any]:
        """Back to "manual", recorded as a ledger entry naming actor."""
        standing = self.standing(spec, agent)
        if standing.granted != "auto":
            raise ActionRefused(f"{spec}/{agent} has no autonomy to revoke (it is manual). Nothing was changed.")
        return self._record("revoke", standing, "manual", actor, reason)

    def demote(self, spec: str, agent: str, cause: str, reason: str, run: str | None = None,
               decision: str | None = None) -> dict[str, Any] | None:
        """Back to "manual" by policy, at once: a revoke entry whose actor is the policy, with the cause (e.g.
        "boundary", "secret", "P0 finding", "gate failed after merge", "revert") and the run behind it.
        None when the pair is not "auto" (nothing to demote). decision: the id to record it under (a revert's
        demotion, completed on recovery, must not be written twice)."""
        grants, found = self._read()
        granted = grants.get((spec, agent), {})
        if granted.get("level") != "auto":
            return None
        entry = self.fleet.ledger.append({
            "action": "revoke", "decision": decision or new_decision_id(), "spec": spec, "agent": agent,
            "level": "manual", "actor": POLICY_ACTOR, "demoted": True, "cause": cause, "reason": reason, "run": run,
            "granted_by": granted.get("actor"), "grant": granted.get("hash"),
            "streak": len(found.get((spec, agent), ()))})
        grants[(spec, agent)] = {"level": "manual", "actor": POLICY_ACTOR, "hash": entry["hash"]}
        write_hint(self.fleet.repo.state_dir, grants)
        return entry

    def _record(self, action: str, standing: Standing, level: str, actor: str, reason: str) -> dict[str, Any]:
        entry = self.fleet.ledger.append({"action": action, "decision": new_decision_id(), "spec": standing.spec,
                                          "agent": standing.agent, "level": level, "actor": actor,
                                          "reason": reason, "streak": standing.streak})
        grants, _found = self._read()
        write_hint(self.fleet.repo.state_dir, grants)
        return entry

    def _read(self) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], tuple[str, ...]]]:
        """From the ledger: each pair's last grant or revoke, and each pair's track record."""
        from orchestra.core.ledger.fields import decode_decisions
        entries, _unreadable = decode_decisions(self.fleet.ledger.lines())  # ledger verify reports those
        grants = {(e.spec, e.agent): {"level": e.level, "actor": e.actor, "hash": e.hash}
                  for e in entries if e.action in CHANGES}
        return grants, streaks(entries)


def streaks(entries: Iterable[DecisionFields]) -> dict[tuple[str, str], tuple[str, ...]]:
    """Per spec and agent: the latest runs in a row accepted by a human, ready, never redirected or reverted
    (a reject, a forced accept or such a run ends the streak), since the pair was last demoted. Accepts by
    policy are not a human's: they neither count nor end it. Each pair's runs of the streak, oldest first: the
    evidence behind a suggested promotion."""
    outcomes: dict[tuple[str, str], list[tuple[str, str, bool]]] = defaultdict(list)
    redirected, reverted = set(), set()
    for entry in entries:
        if entry.action == "revoke" and entry.demoted:
            outcomes[(str(entry.spec), str(entry.agent))].clear()  # earned again from here
        elif entry.action in ("accept", "reject") and isinstance(entry.run, str) and entry.actor != POLICY_ACTOR:
            outcomes[(str(entry.spec or "task"), str(entry.agent))].append(
                (entry.action, entry.run, bool(entry.forced)))
        elif entry.action == "redirect":
            redirected.add(entry.run)
        elif entry.action == "revert":
            reverted.add(entry.run)
    found = {}
    for pair, decided in outcomes.items():
        streak: list[str] = []
        for action, run, forced in reversed(decided):
            if action == "reject" or forced or run in redirected or run in reverted:
                break
            streak.append(run)
        found[pair] = tuple(reversed(streak))
    return found
