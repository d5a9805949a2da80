"""Approval rules ([[approvals]] in the score): a run that changes files a rule covers merges only once enough
distinct humans have accepted the same candidate.

Each human accept of such a run is an *approval*: while the rules still want more, it is recorded (an
`approve` ledger entry, and on the run) and the run stays in review, showing "1 of 2 approvals: Ada". The
accept that completes them merges, its ledger entry listing the approvals. They count for one candidate:
a change to the run (a redirect, an edit, an update) asks for them again.

Who counts: people, told apart by email (else by name); the rule's approvers, or the CODEOWNERS owners of
the files it matched, when it names them. The person who started the run, or last redirected it, cannot
be its only approver. An accept by policy is never an approval (autopilot holds such runs for humans).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused
from orchestra.core.base.globs import compile_globs
from orchestra.core.runs.run import Run
from orchestra.core.score.model import ApprovalRule

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

CODEOWNERS_PLACES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")  # where GitHub looks, in order


def person(actor: str) -> str:
    """Who an actor is, for telling approvers apart: the email of "Name <email>", else the name; lowercased."""
    name, _, rest = actor.strip().partition(" <")
    return (rest.rstrip(">") if rest else name).strip().lower().lstrip("@")


def names_person(names: tuple[str, ...] | list[str], actor: str) -> bool:
    """Whether one of names (names, emails, @handles) is actor: by email, name or the email's local part."""
    name, _, rest = actor.strip().partition(" <")
    email = rest.rstrip(">").lower() if rest else ""
    said = {name.strip().lower(), email, email.partition("@")[0]} - {""}
    return any(entry.strip().lower().lstrip("@") in said for entry in names)


@dataclass(frozen=True)
class Applied:
    """One rule over one run: the files it matched and who may approve them (empty: anyone)."""

    rule: ApprovalRule
    files: tuple[str, ...]
    approvers: tuple[str, ...]

    def counted(self, approvals: list[dict[str, Any]], excluded: set[str]) -> list[str]:
        """The distinct people among approvals who count for this rule, in order."""
        found: list[str] = []
        for approval in approvals:
            actor = str(approval.get("actor", ""))
            if self.approvers and not names_person(self.approvers, actor):
                continue
            if person(actor) not in {person(a) for a in found}:
                found.append(actor)
        # The run's starter (or last redirector) cannot be its only approver: alone, they do not count.
        if found and all(person(actor) in excluded for actor in found):
            return []
        return found

    def describe(self) -> str:
        shown = ", ".join(self.files[:3]) + (f" and {len(self.files) - 3} more" if len(self.files) > 3 else "")
        return f"{' '.join(self.rule.paths)} ({shown})"


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a run stands with the rules over its files."""

    applied: tuple[Applied, ...]
    approvals: tuple[dict[str, Any], ...]  # on the current candidate, in order
    excluded: frozenset[str]  # people who cannot approve alone: the starter, the last redirector

    @property
    def needed(self) -> int:
        return max((applied.rule.require for applied in self.applied), default=0)

    @property
    def counted(self) -> list[str]:
        """The approvers who count for every rule (the shown "n of m")."""
        sets = [applied.counted(list(self.approvals), set(self.excluded)) for applied in self.applied]
        if not sets:
            return []
        return [actor for actor in sets[0] if all(person(actor) in {person(a) for a in s} for s in sets[1:])]

    @property
    def satisfied(self) -> bool:
        return all(len(applied.counted(list(self.approvals), set(self.excluded))) >= applied.rule.require
                   for applied in self.applied)

    def line(self) -> str:
        """"1 of 2 approvals: Ada Lovelace" (names without emails)."""
        who = ", ".join(actor.partition(" <")[0] for actor in self.counted)
        return f"{len(self.counted)} of {self.needed} approvals" + (f": {who}" if who else "")

    def to_json(self) -> dict[str, Any]:
        return {"needed": self.needed, "approved_by": self.counted, "satisfied": self.satisfied,
                "rules": [{"paths": list(a.rule.paths), "require": a.rule.require, "files": list(a.files),
                           "approvers": list(a.approvers)} for a in self.applied]}


def codeowners(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """The repository's CODEOWNERS lines as (pattern, owners), in order ([] when there is none)."""
    for place in CODEOWNERS_PLACES:
        try:
            text = (root / place).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = []
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words:
                found.append((words[0], tuple(words[1:])))
        return found
    return []


def owners_of(rules: list[tuple[str, tuple[str, ...]]], files: tuple[str, ...]) -> tuple[str, ...]:
    """Everyone CODEOWNERS names for files (per file, its last matching line wins, as on GitHub)."""
    import pathspec  # loaded only where a rule reads CODEOWNERS
    owners: list[str] = []
    compiled = [(pathspec.GitIgnoreSpec.from_lines([pattern]), who) for pattern, who in rules]
    for path in files:
        last: tuple[str, ...] = ()
        for spec, who in compiled:
            if spec.match_file(path):
                last = who
        owners.extend(owner for owner in last if owner not in owners)
    return tuple(owners)


def status(fleet: Fleet, run: Run) -> ApprovalStatus:
    """The rules over the run's changed files and the approvals of its current candidate."""
    rules = fleet.score.approvals if fleet.score else ()
    applied = []
    for rule in rules:
        spec = compile_globs(rule.paths)
        files = tuple(path for path in run.changed_paths if spec.match_file(path))
        if files:
            approvers = owners_of(codeowners(fleet.repo.root), files) if rule.codeowners else rule.approvers
            applied.append(Applied(rule, files, approvers))
    approvals = tuple(a for a in run.approvals if a.get("candidate") == run.candidate)
    excluded = {person(run.started_by)} if run.started_by else set()
    if run.feedback:
        excluded.add(person(str(run.feedback[-1].get("actor", ""))))
    return ApprovalStatus(tuple(applied), approvals, frozenset(excluded - {""}))


def approvals_needed(fleet: Fleet, run: Run) -> int:
    """How many human approvals the rules want for the run (0: no rule covers its files)."""
    return status(fleet, run).needed


def check_approver(found: ApprovalStatus, run: Run, actor: str) -> None:
    """Refuse (nothing changed) an accept that cannot count as an approval: not a named approver of some
    rule, or an approval of this candidate already given by the same person."""
    for applied in found.applied:
        if applied.approvers and not names_person(applied.approvers, actor):
            who = ", ".join(applied.approvers)
            source = "CODEOWNERS" if applied.rule.codeowners else "the rule's approvers"
            raise ActionRefused(f"{actor} cannot approve run {run.id}: it changes {applied.describe()}, which "
                                f"{source} give to {who}. Nothing was changed.")
    if any(person(str(a.get("actor", ""))) == person(actor) for a in found.approvals):
        raise ActionRefused(f"{actor} already approved run {run.id}'s candidate ({found.line()}): another person "
                            "must approve it. Nothing was changed.")


def approvals_line(run: Run) -> str | None:
    """"1 of 2 approvals: Ada Lovelace", as the last approval of the run's current candidate counted them
    (without the score: for the pane and `orchestra accept`); None for a run in review without, or decided."""
    approvals = [a for a in run.approvals if a.get("candidate") == run.candidate]
    if run.state != "review" or not approvals:
        return None
    counted = approvals[-1].get("counted") or []
    who = ", ".join(str(actor).partition(" <")[0] for actor in counted)
    return f"{len(counted)} of {approvals[-1].get('needed', '?')} approvals" + (f": {who}" if who else "")
