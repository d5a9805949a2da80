"""The ledger read for people: one row per entry (what it did, to which run, by whom, on what evidence), and
a filter over those rows. The UI's History screen shows them.

An entry holds whatever was written, by this version, an older one or by hand: any field may be absent or of
another type than expected, and every string is untrusted. So each value is read through `text`, which gives
one printable line, and nothing here raises on a strange entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orchestra.core.ledger.lines import parse_line

FILTER_KEYS = ("spec", "agent", "actor", "action", "run")
POLICY = "policy"  # the actor of an accept or a demotion the autonomy policy made
SHORT_VERDICT = {"approved": "approved", "changes requested": "changes"}
FAILED = frozenset({"failed", "error"})


def text(value: Any, limit: int = 200) -> str:
    """value as one printable line of at most limit characters ("" for None): control and format characters
    (escape sequences, bidi overrides) become �, line breaks and tabs spaces."""
    if value is None:
        return ""
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    line = "".join(c if c.isprintable() else " " if c in "\t\r\n" else "�" for c in raw[:limit + 1])
    return line if len(line) <= limit else line[:limit - 1] + "…"


def name_of(actor: str) -> str:
    """"Ada Lovelace <ada@example.com>" → "Ada Lovelace"; anything else as it is."""
    name = actor.split("<", 1)[0].strip()
    return name or actor


def local_time(value: Any, short: bool = True) -> str:
    """An entry's UTC time in local time: "11-01 13:00" (short) or "2026-11-01 13:00:00 CET"; an
    unreadable time as written."""
    if not isinstance(value, str):
        return text(value, 20)
    try:
        moment = datetime.fromisoformat(value)
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone()
    except (ValueError, OverflowError, OSError):
        return text(value, 25)
    return moment.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S %Z")


def gates_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's gate records (Gate.evidence() with "stale"); anything else in the list is left out."""
    gates = entry.get("gates")
    return [gate for gate in gates if isinstance(gate, dict)] if isinstance(gates, list) else []


def is_review(gate: dict[str, Any]) -> bool:
    return gate.get("kind") == "review" or text(gate.get("name")).startswith("review-")


def verdict_of(gates: Iterable[dict[str, Any]]) -> str:
    """The first review gate's verdict ("approved", "changes requested"), "" when no review ran."""
    return next((text(gate.get("verdict"), 40) for gate in gates if is_review(gate) and gate.get("verdict")), "")


def gates_summary(gates: list[dict[str, Any]]) -> str:
    """"3/3 ✓": how many gates passed of how many, then ✓ (all passed, on the decided tree), ✗ (one
    failed), "stale" (one ran on another tree) or … (some had not finished)."""
    if not gates:
        return ""
    passed = sum(gate.get("status") == "passed" for gate in gates)
    if any(gate.get("status") in FAILED for gate in gates):
        mark = "✗"
    elif any(gate.get("stale") is True for gate in gates):
        mark = "stale"
    else:
        mark = "✓" if passed == len(gates) else "…"
    return f"{passed}/{len(gates)} {mark}"


def action_label(entry: dict[str, Any]) -> str:
    """The action, with what made it automatic: "accept (auto)" by policy, "revoke (demoted)"."""
    action = text(entry.get("action"), 40) or "?"
    if action == "accept" and (entry.get("actor") == POLICY or entry.get("autonomy") == "auto"):
        return "accept (auto)"
    if action == "revoke" and entry.get("demoted") is True:
        return "revoke (demoted)"
    return action


def actor_label(entry: dict[str, Any], full: bool = False) -> str:
    """Who took the decision: a name (with the email when full); the policy says who granted it autonomy."""
    actor = text(entry.get("actor"), 120)
    granted_by = text(entry.get("granted_by"), 120)
    if actor == POLICY and granted_by:
        return f"{POLICY} (granted by {granted_by if full else name_of(granted_by)})"
    return actor if full else name_of(actor)


def evidence_summary(entry: dict[str, Any]) -> str:
    """The evidence column: gates passed, the review's verdict, an approval's count; for an entry without gates
    (a grant, a revoke) the level it set and why."""
    gates = gates_of(entry)
    verdict = verdict_of(gates)
    parts = [gates_summary(gates), SHORT_VERDICT.get(verdict, verdict)]
    if entry.get("forced") is True:
        parts.append("forced")
    if entry.get("action") == "approve" and entry.get("needed") is not None:
        counted = entry.get("counted")
        parts.append(f"approval {len(counted) if isinstance(counted, list) else '?'}/{text(entry['needed'], 4)}")
    if not gates:
        cause = text(entry.get("cause"), 30)
        parts += [f"→ {text(entry.get('level'), 20)}" if entry.get("level") else "", f"{cause}:" if cause else "",
                  text(entry.get("reason"), 80)]
    return " ".join(part for part in parts if part)


@dataclass(frozen=True, eq=False)
class HistoryRow:
    """One ledger entry as the history lists it; `entry` is the entry as recorded."""

    position: int  # its line in the ledger, 0 first: unique even when seq is missing or repeated
    entry: dict[str, Any]
    seq: str
    time: str
    action: str
    run: str
    spec: str
    agent: str
    actor: str
    evidence: str
    reverted_by: str = ""  # an accept's: the seq of the revert entry that undid it

    @classmethod
    def of(cls, position: int, entry: dict[str, Any], reverted_by: str = "") -> HistoryRow:
        evidence = " ".join(part for part in (evidence_summary(entry), "↺ reverted" if reverted_by else "") if part)
        return cls(position, entry, seq=text(entry.get("seq"), 12), time=local_time(entry.get("time")),
                   action=action_label(entry), run=text(entry.get("run"), 20), spec=text(entry.get("spec"), 60),
                   agent=text(entry.get("agent"), 60), actor=actor_label(entry), evidence=evidence,
                   reverted_by=reverted_by)

    def searched(self) -> dict[str, str]:
        """What each filter key looks in, lowercased (the actor with its email and who granted autonomy)."""
        actor = f"{actor_label(self.entry, full=True)} {text(self.entry.get('actor'))}"
        return {"spec": self.spec.lower(), "agent": self.agent.lower(), "actor": actor.lower(),
                "action": self.action.lower(), "run": self.run.lower()}


def history_rows(lines: Iterable[bytes]) -> tuple[list[HistoryRow], int]:
    """Every readable entry of the ledger's lines as a row, newest first, and how many lines were unreadable
    (`orchestra ledger verify` says why)."""
    entries, unreadable = [], 0
    for position, raw in enumerate(lines):
        try:
            entries.append((position, parse_line(raw)))
        except (ValueError, RecursionError):
            unreadable += 1
    reverts = reverted(entry for _position, entry in entries)
    rows = [HistoryRow.of(position, entry, reverts.get(accept_key(entry), "")) for position, entry in entries]
    rows.reverse()
    return rows, unreadable


def accept_key(entry: dict[str, Any]) -> str | None:
    """What a revert entry names the accept it undoes by: the accept entry's hash."""
    value = entry.get("hash")
    return value if entry.get("action") == "accept" and isinstance(value, str) and value else None


def reverted(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The hash of each accept entry a revert undid → the revert entry's seq."""
    return {entry["reverts"]: text(entry.get("seq"), 12) for entry in entries
            if entry.get("action") == "revert" and isinstance(entry.get("reverts"), str) and entry["reverts"]}


@dataclass(frozen=True)
class HistoryFilter:
    """Typed words: "spec:X agent:X actor:X action:X run:X" each narrow that column; any other word must be
    in one of them. Every match is a case-insensitive substring."""

    wanted: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, typed: str) -> HistoryFilter:
        wanted, words = [], []
        for token in typed.lower().split():
            key, colon, value = token.partition(":")
            if colon and key in FILTER_KEYS:
                if value:
                    wanted.append((key, value))
            else:
                words.append(token)
        return cls(tuple(wanted), tuple(words))

    def __bool__(self) -> bool:
        return bool(self.wanted or self.words)

    def matches(self, row: HistoryRow) -> bool:
        searched = row.searched()
        return (all(value in searched[key] for key, value in self.wanted)
                and all(any(word in column for column in searched.values()) for word in self.words))
