"""The target moves on: how far each run is behind it, and bringing a run up to date with it.

An update runs under the decide lock (so no accept moves the target half-way), stops the run's
watcher, commits what its worktree holds, journals itself, and then rebases the run's branch onto the
target's tip or merges the tip in ([orchestra] update). On success the run's base is the tip and, in
review, its watcher starts again and verifies the new tree; the gates of the old tree show as stale
meanwhile. On a conflict nothing is left changed: the run is redirected with the conflicted files
(its agent can rebase in its jail: the target's branch is visible there, read-only), or, when asked,
left for the conductor to resolve in a shell.

A process killed mid-update leaves its journal entry (in `.git/orchestra/update/journal/`): the next
start aborts a rebase or merge still under way, or records one git had finished (`converge_updates`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused, OrchestraError
from orchestra.core.base.faults import declare, fault_point
from orchestra.core.base.files import file_lock
from orchestra.core.fleet.journal import UPDATE_STATE, Journal, new_decision_id
from orchestra.core.git.actor import actor_identity, current_actor
from orchestra.core.git.diffs import candidate_fields
from orchestra.core.git.runner import inherit_fds
from orchestra.core.git.update import (
    Updated,
    abort_in_progress,
    behind_count,
    check_updatable,
    cut_reflogs,
    finished_update,
    pin_replaced,
    reflog_sizes,
    target_commit,
    update_branch,
)
from orchestra.core.runs.lifecycle import allowed, refusal
from orchestra.core.runs.run import DECIDED_STATES, Run

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet

JOURNALLED = declare("update.journalled")
UPDATED = declare("update.updated")
ON_CONFLICT = ("redirect", "leave")  # what a conflict does: redirect the agent, or leave it to the conductor


class UpdateRefused(ActionRefused):
    """The run cannot be updated in its state (exit 3, as any refusal by policy)."""

    exit_status = 3


@dataclass
class UpdateResult:
    """What an update did: the run as it is now, the target's tip, and the conflicted files if any."""

    run: Run
    mode: str
    tip: str
    commits: int                 # how many commits of the target it took in
    conflicted: list[str] = field(default_factory=list)
    redirected: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run.id, "state": self.run.state, "mode": self.mode, "target": self.run.target,
                "tip": self.tip, "commits": self.commits, "conflicted": self.conflicted, "redirected": self.redirected,
                "base": self.run.base, "candidate": self.run.candidate}

    def line(self) -> str:
        """One sentence for the conductor."""
        run, onto = self.run, f"{self.run.target} ({self.tip[:10]})"
        if self.conflicted:
            what = (f"; nothing was changed and {run.agent} was redirected to resolve it" if self.redirected else
                    f"; nothing was changed. Resolve it yourself in its worktree {run.worktree} "
                    f"(`git {self.mode} {run.target}`), or redirect the agent to do it")
            return f"Updating {run.id} onto {onto} conflicted in {', '.join(self.conflicted)}{what}."
        if not self.commits:
            return f"{run.id} is up to date with {onto}."
        rerun = "; its gates run again" if run.state == "review" else ""
        return f"Updated {run.id} onto {onto} by {self.mode}: {plural(self.commits, 'new commit')}{rerun}."


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def journal_of(fleet: Fleet) -> Journal:
    return Journal(fleet.repo.state_dir / UPDATE_STATE)


def update_mode(fleet: Fleet) -> str:
    return fleet.score.update if fleet.score is not None else "rebase"


# -- how far behind -------------------------------------------------------------------------------
def refresh_behind(fleet: Fleet, runs: list[Run] | None = None) -> dict[str, int]:
    """run id → commits its target has that its base lacks, for every undecided run; counted again (one git
    call) only for a run whose base or target's tip changed since, and kept on the run (the feed shows it).
    A run that was never behind is counted each time (nothing is kept for it until it falls behind)."""
    tips: dict[str, str | None] = {}
    counts: dict[str, int] = {}
    for run in fleet.store.list() if runs is None else runs:
        if run.damaged or run.state in DECIDED_STATES:
            continue
        if run.target not in tips:
            tips[run.target] = _tip_or_none(fleet, run.target)
        tip, base = tips[run.target], run.merge_base or run.base
        if tip is None:
            continue
        known = run.behind or {}
        if known.get("target") == tip and known.get("base") == base and isinstance(known.get("commits"), int):
            counts[run.id] = known["commits"]
            continue
        try:
            counts[run.id] = behind_count(fleet.repo.root, base, tip)
        except OrchestraError:  # a base git no longer has (a damaged record): nothing to say
            continue
        if counts[run.id] or known:  # a run never behind is not written: no redraw for it at start-up
            fleet.store.set(run.id, behind={"commits": counts[run.id], "target": tip, "base": base})
    return counts


def _tip_or_none(fleet: Fleet, target: str) -> str | None:
    try:
        return target_commit(fleet.repo, target)
    except OrchestraError:  # a target branch deleted meanwhile: nothing to count against
        return None


# -- updating -------------------------------------------------------------------------------------
def update_run(fleet: Fleet, run_id: str, actor: str | None = None, on_conflict: str = "redirect") -> UpdateResult:
    """Bring a run up to date with its target's tip (see the module's docstring)."""
    actor = actor or current_actor(fleet.repo.root)
    with fleet.decisions.deciding():
        _converge(fleet)
        result = _update_locked(fleet, run_id, actor)
    if result.conflicted and on_conflict == "redirect":  # after the lock: the redirect takes it itself
        result.run = fleet.redirect(result.run.id, conflict_instruction(result), actor)
        result.redirected = True
    return result


def _update_locked(fleet: Fleet, run_id: str, actor: str) -> UpdateResult:
    run = fleet.get(run_id)
    if not allowed("update", run):
        raise UpdateRefused(refusal("update", run))
    run = fleet.settle(run, for_accept=False, actor=actor)  # the watcher stops; leftovers are committed
    tree, mode, journal = fleet.tree(run), update_mode(fleet), journal_of(fleet)
    record: dict[str, Any] = {}
    try:
        tip = target_commit(fleet.repo, run.target)
        head = fleet.branch_tip(run)
        commits = behind_count(fleet.repo.root, head, tip)
        check_updatable(tree, tip)
        record = journal.begin({
            "id": new_decision_id(), "action": "update", "run": run.id, "mode": mode, "tip": tip, "actor": actor,
            "head_before": head, "reflogs": {str(p): n for p, n in reflog_sizes(tree).items()}})
        fault_point(JOURNALLED)
        outcome = update_branch(tree, run.id, tip, mode, actor_identity(actor), update_message(run, tip))
    except ActionRefused:
        if record:  # git was given the update and undid it (the refusal says how the worktree is)
            journal.finish(record["id"])
        fleet.resume_watch(fleet.get(run.id))
        raise
    fault_point(UPDATED)
    if outcome.conflicted:
        run = _note(fleet, run, f"updating onto {run.target} ({tip[:10]}) conflicted in "
                                f"{', '.join(outcome.conflicted)}: aborted, nothing was changed")
    else:
        run = record_update(fleet, run, outcome, tip, mode, commits)
    journal.finish(record["id"])
    if outcome.conflicted:
        fleet.resume_watch(run)
    return UpdateResult(run, mode, tip, commits if not outcome.conflicted else 0, outcome.conflicted)


def record_update(fleet: Fleet, run: Run, outcome: Updated, tip: str, mode: str, commits: int) -> Run:
    """Give the run its new base and candidate, say so in its events, and let its watcher verify again."""
    if outcome.changed:
        assert outcome.head_after is not None
        values = candidate_fields(fleet.repo.root, outcome.head_after, f"refs/heads/{run.target}", tip)
        behind = {"commits": 0, "target": tip, "base": values["merge_base"]}
        fleet.store.set(run.id, base=tip, behind=behind, **values)
        kept = f"; its old head is kept as {outcome.kept_ref}" if outcome.kept_ref else ""
        run = _note(fleet, run, f"updated onto {run.target} ({tip[:10]}) by {mode}: "
                                f"{plural(commits, 'new commit')}, head {outcome.head_before[:10]} → "
                                f"{outcome.head_after[:10]}{kept}",
                    {"mode": mode, "target": tip, "head_before": outcome.head_before, "head_after": outcome.head_after,
                     "kept": outcome.kept_ref})
    fleet.resume_watch(run)
    return run


def _note(fleet: Fleet, run: Run, text: str, update: dict[str, Any] | None = None) -> Run:
    event: dict[str, Any] = {"type": "note", "text": text}
    if update is not None:
        event["update"] = update
    fleet.store.append_events(run.id, [event])
    return fleet.get(run.id)


def update_message(run: Run, tip: str) -> str:
    return f"Merge {run.target} ({tip[:10]}) into orchestra run {run.id}\n\nOrchestra-Run: {run.id}\n"


def conflict_instruction(result: UpdateResult) -> str:
    """What the agent is asked to do when its work conflicts with the target's new commits."""
    target = result.run.target
    return (f"The target branch {target} moved on ({result.tip[:10]}) and your work conflicts with it in "
            f"{', '.join(result.conflicted)}. Your worktree was left as it was. Bring your work up to date: run "
            f"`git rebase {target}` in your worktree (or `git merge {target}`), resolve the conflicts in those "
            f"files keeping both your change and theirs, make sure the checks pass, and commit.")


# -- after a crash --------------------------------------------------------------------------------
def converge_updates(fleet: Fleet) -> None:
    """Finish what a killed update left (skipped while another process holds the decide lock)."""
    if not journal_of(fleet).dir.is_dir():
        return
    try:
        with file_lock(fleet.decisions.lock_path, blocking=False) as fd, inherit_fds(fd):
            _converge(fleet)
    except BlockingIOError:
        pass  # a decision or an update is under way; it converges first


def _converge(fleet: Fleet) -> None:
    for record in journal_of(fleet).pending():
        run = fleet.get(record["run"])
        if Path(run.worktree).is_dir() and not run.damaged:
            _converge_one(fleet, run, record)
        journal_of(fleet).finish(record["id"])


def _converge_one(fleet: Fleet, run: Run, record: dict[str, Any]) -> None:
    """Abort a rebase or merge still under way; record one git had finished."""
    tree, before, tip = fleet.tree(run), record["head_before"], record["tip"]
    abort_in_progress(tree)
    if finished_update(tree, before, tip):
        outcome = Updated(head_before=before, head_after=fleet.branch_tip(run))
        if record["mode"] == "rebase":
            outcome.kept_ref = pin_replaced(tree, run.id, before)
        record_update(fleet, run, outcome, tip, record["mode"], behind_count(fleet.repo.root, before, tip))
        return
    cut_reflogs({Path(path): size for path, size in (record.get("reflogs") or {}).items()})
    _note(fleet, run, f"an update onto {run.target} was interrupted; it was undone and nothing was changed")
    fleet.resume_watch(fleet.get(run.id))
