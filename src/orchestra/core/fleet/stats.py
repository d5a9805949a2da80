"""What the decisions say about the fleet's agents and specs: outcomes, not lines of code (`orchestra stats`).

Read from the ledger alone, so every decision ever recorded counts (runs pruned since included), and only
the fields used are decoded from each line (ledger.fields.decode_decisions). Over the decisions since a
date, per agent and per spec:

    runs          runs with a decision
    accepted      runs accepted (and rejected: runs rejected); accept rate: accepted / (accepted + rejected)
    rework        redirects of the accepted runs, per accepted run
    first try     accepted runs never redirected and not forced, of the accepted runs
    escaped       accepted runs reverted since, of the accepted runs (defects that got past review)
    conductor     median time from a run entering review to its accept or reject (decisions recorded since
                  entries carry review_since)
    tokens, cost  per accepted run, for llm agents: the accept's usage (the whole run, redirects included);
                  a cost the price map did not know is left out and counted
    agreement     per spec: of the groups of runs started together with two or more decided candidates, the
                  share where at least two candidates had the same tree (a clear spec makes agents agree)
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestra.core.base.words import plural
from orchestra.core.ledger.fields import DecisionFields


@dataclass
class Tally:
    """One agent's or one spec's decisions."""

    runs: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    reverted: set[str] = field(default_factory=set)
    forced: set[str] = field(default_factory=set)
    auto: set[str] = field(default_factory=set)  # accepted by policy
    redirects: Counter = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    usage: dict[str, dict] = field(default_factory=dict)  # accepted run -> its accept's usage

    def add(self, entry: DecisionFields, wait: float | None) -> None:
        """Count one decision (wait: seconds from review to it, if known)."""
        run, action = entry.run, entry.action
        self.runs.add(run)
        if action == "accept":
            self.accepted.add(run)
            if entry.granted_by is not None:
                self.auto.add(run)
            self.rejected.discard(run)
            if entry.forced:
                self.forced.add(run)
            if isinstance(entry.usage, dict):
                self.usage[run] = entry.usage
        elif action == "reject":
            self.rejected.add(run)
        elif action == "redirect":
            self.redirects[run] += 1
        elif action == "revert":
            self.reverted.add(run)
        if wait is not None:
            self.waits.append(wait)

    def summary(self) -> dict[str, Any]:
        accepted, decided = len(self.accepted), len(self.accepted) + len(self.rejected)
        tokens = [(u.get("prompt_tokens") or 0) + (u.get("completion_tokens") or 0) for u in self.usage.values()]
        costs = [u["cost"] for u in self.usage.values() if isinstance(u.get("cost"), (int, float))]
        return {
            "runs": len(self.runs), "accepted": accepted, "auto_accepted": len(self.auto & self.accepted),
            "rejected": len(self.rejected),
            "accept_rate": ratio(accepted, decided),
            "redirects": sum(self.redirects.values()),
            "rework": ratio(sum(self.redirects[run] for run in self.accepted), accepted),
            "first_try": ratio(sum(1 for run in self.accepted if not self.redirects[run] and run not in self.forced),
                               accepted),
            "reverted": len(self.reverted & self.accepted),
            "escaped": ratio(len(self.reverted & self.accepted), accepted),
            "conductor_seconds": statistics.median(self.waits) if self.waits else None,
            "timed_decisions": len(self.waits),
            "tokens_per_accept": statistics.fmean(tokens) if tokens else None,
            "cost_per_accept": statistics.fmean(costs) if costs else None,
            "cost_unknown": len(self.usage) - len(costs),
        }


def ratio(part: int | float, whole: int) -> float | None:
    return part / whole if whole else None


def review_wait(entry: DecisionFields) -> float | None:
    """Seconds from the run entering review to this accept or reject, when the entry says when that was."""
    if entry.action not in ("accept", "reject") or not isinstance(entry.review_since, (int, float)):
        return None
    if entry.actor == "policy":  # an accept by policy took none of the conductor's time
        return None
    decided = parse_time(entry.time)
    return None if decided is None else max(0.0, decided - entry.review_since)


def parse_time(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def fleet_stats(entries: list[DecisionFields], since: str | None = None) -> dict[str, Any]:
    """Per agent, per spec and the specs' agreement, over the entries from since (an ISO time, UTC) on."""
    by_agent: dict[str, Tally] = defaultdict(Tally)
    by_spec: dict[str, Tally] = defaultdict(Tally)
    trees: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (spec, group) -> run -> candidate tree
    counted = 0
    for entry in entries:
        if type(entry.run) is not str or (since and (type(entry.time) is not str or entry.time < since)):
            continue
        counted += 1
        spec = entry.spec if type(entry.spec) is str else "task"
        wait = review_wait(entry)
        by_agent[str(entry.agent)].add(entry, wait)
        by_spec[spec].add(entry, wait)
        if entry.action in ("accept", "reject") and isinstance(entry.tree, str):
            trees[(spec, str(entry.group or entry.run))][entry.run] = entry.tree
    return {"since": since, "decisions": counted,
            "by_agent": {name: tally.summary() for name, tally in sorted(by_agent.items())},
            "by_spec": {name: tally.summary() for name, tally in sorted(by_spec.items())},
            "agreement": agreement(trees)}


def agreement(trees: dict[tuple[str, str], dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Per spec: groups with two or more decided candidates, and how many had two with the same tree."""
    found: dict[str, dict[str, Any]] = {}
    for (spec, _group), candidates in trees.items():
        if len(candidates) < 2:
            continue
        tally = found.setdefault(spec, {"groups": 0, "agreed": 0})
        tally["groups"] += 1
        tally["agreed"] += max(Counter(candidates.values()).values()) >= 2
    for tally in found.values():
        tally["rate"] = tally["agreed"] / tally["groups"]
    return dict(sorted(found.items()))


COLUMNS = (("runs", "runs"), ("accepted", "acc"), ("auto_accepted", "auto"), ("accept_rate", "acc %"),
           ("rework", "rework"),
           ("first_try", "1st try"), ("escaped", "escaped"), ("conductor_seconds", "conductor"),
           ("tokens_per_accept", "tok/acc"), ("cost_per_accept", "$/acc"))


def stats_lines(stats: dict[str, Any]) -> list[str]:
    """The stats as the command line prints them: a table per agent, one per spec, then agreement."""
    since = f" since {stats['since']}" if stats["since"] else ""
    lines = [f"{plural(stats['decisions'], 'decision')}{since}."]
    if not stats["decisions"]:
        return lines
    for title, table in (("agent", stats["by_agent"]), ("spec", stats["by_spec"])):
        width = max(len(title), *(len(name) for name in table))
        lines += ["", f"{title:<{width}}  " + "  ".join(f"{label:>9}" for _key, label in COLUMNS)]
        lines += [f"{name:<{width}}  " + "  ".join(f"{shown(key, row[key]):>9}" for key, _label in COLUMNS)
                  for name, row in table.items()]
    if stats["agreement"]:
        lines += ["", "agreement (groups whose candidates matched, where two or more were decided):"]
        lines += [f"  {spec}: {found['agreed']} of {found['groups']} ({found['rate']:.0%})"
                  for spec, found in stats["agreement"].items()]
    lines += ["", "rework: redirects per accepted run · 1st try: accepted without a redirect or force",
              "escaped: reverted after accept · conductor: median time from review to a human's decision",
              "auto: accepted by policy (orchestra autonomy)"]
    return lines


def shown(key: str, value: Any) -> str:
    """A figure as the table shows it ("-" when there is none)."""
    if value is None:
        return "-"
    if key in ("accept_rate", "first_try", "escaped"):
        return f"{value:.0%}"
    if key == "rework":
        return f"{value:.2f}"
    if key == "conductor_seconds":
        minutes, seconds = divmod(int(value), 60)
        return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{seconds:02d}s"
    if key == "tokens_per_accept":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if key == "cost_per_accept":
        return f"${value:.2f}"
    return str(value)
