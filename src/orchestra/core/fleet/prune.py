"""Cleanup that never loses work: what decided runs left behind (`orchestra prune`), and old demos.

A decided run may leave a worktree (kept because something in it would have been lost), its branch,
commits pinned under refs/orchestra/runs/<run>/kept/, its private jail directory and its logs. Prune
removes each only when nothing would be lost: a worktree when, checked again now, it holds nothing
uncommitted and nothing no commit has but disposable files; a branch or pinned commit when its target
holds it (or, with `rejected`, when its run was rejected: that work is then gone); a jail once its
worktree is gone and the objects it wrote are in the repository; the logs once nothing else is left.
Undecided runs, damaged records and decisions still journalled are never touched. It holds the decide
lock throughout, so it never races a decision.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import GitError, OrchestraError
from orchestra.core.fleet.fleet import Fleet
from orchestra.core.git.cleanup import remove_worktree, would_keep
from orchestra.core.git.repo import Repository, open_repository
from orchestra.core.git.runner import git, git_ok
from orchestra.core.git.snapshot import KEPT_REFS, adopt_objects
from orchestra.core.onboarding.demo import is_demo
from orchestra.core.runs.lifecycle import DECIDED
from orchestra.core.runs.run import Run
from orchestra.core.supervise.processes import stop_supervisor, supervisor_alive, supervisors_of

DAY = 86400.0
REJECTED_WARNING = ("--rejected: the branches and kept commits of rejected runs are deleted; "
                    "their work is gone for good.")
REJECTED_DELETED = "rejected, and --rejected was given: its work is deleted"


@dataclass(frozen=True)
class Item:
    """One thing prune removed (or would remove), or kept, and why."""

    run: str
    what: str  # supervisor | worktree | jail | branch | ref | logs | run
    name: str  # a path, a branch, a ref or a pid
    why: str


@dataclass
class PruneReport:
    """What one prune did, or (dry_run) would do."""

    dry_run: bool
    rejected: bool
    removed: list[Item] = field(default_factory=list)
    kept: list[Item] = field(default_factory=list)
    failed: list[Item] = field(default_factory=list)

    @property
    def deleted_rejected_work(self) -> bool:
        return any(item.why == REJECTED_DELETED for item in self.removed)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "rejected": self.rejected,
                **{name: [asdict(item) for item in getattr(self, name)] for name in ("removed", "kept", "failed")}}

    def lines(self) -> list[str]:
        """The report as `orchestra prune` prints it."""
        out = [REJECTED_WARNING] if self.deleted_rejected_work else []
        for heading, items in (("Would remove" if self.dry_run else "Removed", self.removed),
                               ("Kept", self.kept), ("Could not remove", self.failed)):
            if items:
                out.append(f"{heading}:")
                out += [f"  {item.run:<6} {item.what:<10} {item.name + ': ' if item.name else ''}{item.why}"
                        for item in items]
        if not (self.removed or self.kept or self.failed):
            out.append("No runs: nothing to prune.")
        elif not self.removed:
            out.append("Nothing to remove.")
        if self.dry_run:
            out.append("Dry run: nothing was changed.")
        return out


class Pruner:
    """Removes what decided runs left behind, only where nothing would be lost."""

    def __init__(self, fleet: Fleet, dry_run: bool = False, rejected: bool = False,
                 older_than_days: float | None = None, now: float | None = None) -> None:
        self.fleet, self.repo = fleet, fleet.repo
        self.dry_run, self.rejected = dry_run, rejected
        self.older_than = None if older_than_days is None else older_than_days * DAY
        self.now = time.time() if now is None else now
        self.report = PruneReport(dry_run=dry_run, rejected=rejected)

    def prune(self) -> PruneReport:
        with self.fleet.decisions.deciding():
            unfinished = {record.get("run") for record in self.fleet.journal.pending()}
            for run in self.fleet.store.list():
                why_not = self.untouchable(run, unfinished)
                if why_not:
                    self.keep(run, "run", "", why_not)
                else:
                    self.prune_run(run)
        return self.report

    def untouchable(self, run: Run, unfinished: set[Any]) -> str | None:
        """Why prune leaves the whole run alone, or None."""
        if run.damaged:
            return "its record is damaged; reject it first"
        if run.state not in DECIDED:
            return f"not decided ({run.state}): prune never touches it"
        if run.id in unfinished:
            return "a decision on it is unfinished; any orchestra command completes it"
        if not run.branch or not run.worktree:
            return "its record does not name its branch and worktree (it was damaged)"
        age = self.now - decided_at(run)
        if self.older_than is not None and age <= self.older_than:
            return f"decided {age / DAY:.1f} days ago, not more than {self.older_than / DAY:g}"
        return None

    def prune_run(self, run: Run) -> None:
        self.stop_watcher(run)
        if not self.prune_worktree(run):
            return
        self.prune_jail(run)
        branch_gone = self.prune_branch(run)
        refs_gone = self.prune_kept_refs(run)
        if branch_gone and refs_gone:
            self.prune_logs(run)

    # -- the steps: each says what it removed or kept; True when nothing of its kind is left ---------------
    def stop_watcher(self, run: Run) -> None:
        """A decided run's supervisor should be gone; one left (it raced the decision) is stopped first."""
        if supervisor_alive(run):
            self.removed(run, "supervisor", str(run.supervisor_pid), "a decided run's watcher was still running",
                         lambda: stop_supervisor(run))

    def prune_worktree(self, run: Run) -> bool:
        path = Path(run.worktree)
        tree = self.fleet.tree(run)
        if not path.exists():
            if not self.dry_run:
                remove_worktree(self.repo, tree, self.fleet.disposable_for(run))  # forgets git's record of it
                if run.kept:
                    self.fleet.store.set(run.id, kept=None)
            return True
        try:
            kept = would_keep(tree, self.fleet.disposable_for(run)) if self.dry_run else \
                remove_worktree(self.repo, tree, self.fleet.disposable_for(run))
        except OrchestraError as error:
            self.report.failed.append(Item(run.id, "worktree", str(path), str(error)))
            return False
        if kept is not None:
            self.keep(run, "worktree", str(path), kept.describe().removeprefix(f"worktree {kept.path} was kept: "))
            return False
        self.removed(run, "worktree", str(path), "nothing in it would be lost",
                     lambda: self.fleet.store.set(run.id, kept=None))
        return True

    def prune_jail(self, run: Run) -> None:
        """The run's private home, tmp and object store (whose objects are moved into the repository first)."""
        review = self.repo.jails_dir / f"{run.id}.review"  # its reviewers' home and tmp: nothing to adopt
        if review.exists():
            self.removed(run, "jail", str(review), "its reviewers' private home and tmp",
                         lambda: shutil.rmtree(review))
        jail = self.repo.jails_dir / run.id
        if not jail.exists():
            return
        if not self.dry_run:
            try:
                adopt_objects(self.fleet.tree(run))
            except GitError as error:
                self.keep(run, "jail", str(jail), f"the objects it holds do not verify: {error}")
                return
        self.removed(run, "jail", str(jail), "its private home, tmp and object store",
                     lambda: shutil.rmtree(jail))

    def prune_branch(self, run: Run) -> bool:
        ref = f"refs/heads/{run.branch}"
        tip = git(self.repo.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if not tip:
            return True
        why = self.why_deletable(run, tip)
        if why is None:
            self.keep(run, "branch", run.branch, self.why_kept(run, "its work is only on this branch"))
            return False
        self.removed(run, "branch", run.branch, why, lambda: self.delete_ref(ref, tip))
        return True

    def prune_kept_refs(self, run: Run) -> bool:
        """The commits an agent made off its branch, pinned under refs/orchestra/runs/<run>/kept/."""
        out = git(self.repo.root, "for-each-ref", "--format=%(refname) %(objectname)", f"{KEPT_REFS}/{run.id}")
        left = False
        for ref, commit in (line.split(" ", 1) for line in out.splitlines() if line):
            why = self.why_deletable(run, commit)
            if why is None:
                self.keep(run, "ref", ref, self.why_kept(run, "the agent's commit exists only here"))
                left = True
            else:
                self.removed(run, "ref", ref, why, lambda ref=ref, commit=commit: self.delete_ref(ref, commit))
        return not left

    def prune_logs(self, run: Run) -> None:
        run_dir = self.fleet.store.run_dir(run.id)
        self.removed(run, "logs", str(run_dir), "state and event log of a run with nothing else left",
                     lambda: shutil.rmtree(run_dir))

    # -- helpers ------------------------------------------------------------------------------------------
    def why_deletable(self, run: Run, commit: str) -> str | None:
        if git_ok(self.repo.root, "merge-base", "--is-ancestor", commit, f"refs/heads/{run.target}"):
            return f"merged into {run.target}"
        if run.state == "rejected" and self.rejected:
            return REJECTED_DELETED
        return None

    def why_kept(self, run: Run, lost: str) -> str:
        if run.state == "rejected":
            return f"rejected, and {lost} (--rejected deletes it)"
        return f"{run.target} does not hold it: {lost}"

    def delete_ref(self, ref: str, expected: str) -> None:
        """Delete ref only if it still names expected (compare-and-swap: a ref that moved is left alone)."""
        git(self.repo.root, "update-ref", "-m", "orchestra: prune", "-d", ref, expected)

    def removed(self, run: Run, what: str, name: str, why: str, action: Callable[[], object]) -> None:
        if not self.dry_run:
            try:
                action()
            except (OrchestraError, OSError) as error:
                self.report.failed.append(Item(run.id, what, name, str(error)))
                return
        self.report.removed.append(Item(run.id, what, name, why))

    def keep(self, run: Run, what: str, name: str, why: str) -> None:
        self.report.kept.append(Item(run.id, what, name, why))


def decided_at(run: Run) -> float:
    """When the run was decided (its ledger entry's time), else when it finished or was created."""
    stamp = (run.decision or {}).get("time")
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return run.finished or run.created


# -- old demo repositories -------------------------------------------------------------------------------

@dataclass
class DemoCleanup:
    """What cleaning the demos directory did: the demos removed, and those kept with why."""

    removed: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)

    def line(self) -> str | None:
        """One line for `orchestra demo`, or None when there were no older demos."""
        if not (self.removed or self.kept):
            return None
        removed = (f"Removed {len(self.removed)} older demo(s) whose runs were all decided: "
                   f"{', '.join(path.name for path in self.removed)}." if self.removed else "")
        kept = (f" Kept {', '.join(f'{path.name} ({why})' for path, why in self.kept)}." if self.kept else "")
        return (removed + kept).strip()


def prune_demos(demos_dir: Path) -> DemoCleanup:
    """Remove the demo repositories `orchestra demo` made under demos_dir whose runs are all decided and
    that hold nothing else (no worktree left, no uncommitted change): with their worktrees and jails,
    after stopping any supervisor still running. The others are kept."""
    done = DemoCleanup()
    if not demos_dir.is_dir():
        return done
    for root in sorted(path for path in demos_dir.iterdir()
                       if path.is_dir() and not path.is_symlink() and is_demo(path)):
        try:
            why = remove_demo(root)
        except (OrchestraError, OSError) as error:
            why = f"could not check it: {error}"
        if why is None:
            done.removed.append(root)
        else:
            done.kept.append((root, why))
    return done


def remove_demo(root: Path) -> str | None:
    """Remove one demo repository if nothing in it is undecided or unsaved; else say why it stays."""
    repo = open_repository(root)
    if repo.root != root.resolve():
        return "it is not a repository of its own"
    fleet = Fleet(repo, None)  # its score is not needed (and may be broken): nothing is spawned or judged
    with fleet.decisions.deciding():
        why = why_demo_stays(fleet)
        if why is not None:
            return why
        for run in fleet.store.list():
            for pid in supervisors_of(repo.state_dir, run.id):
                stop_supervisor(replace(run, supervisor_pid=pid))
        remove_demo_places(repo)
    return None


def why_demo_stays(fleet: Fleet) -> str | None:
    runs = fleet.store.list()
    undecided = [run.id for run in runs if run.damaged or run.state not in DECIDED]
    if undecided:
        return f"{len(undecided)} undecided run(s)"
    if fleet.journal.pending():
        return "a decision in it is unfinished"
    worktrees = fleet.repo.worktrees_dir
    if worktrees.is_dir() and any(worktrees.iterdir()):
        return "a worktree is still there (a decision kept it)"
    if git(fleet.repo.root, "status", "--porcelain", "--untracked-files=normal"):
        return "uncommitted changes in its checkout"
    return None


def remove_demo_places(repo: Repository) -> None:
    """Remove everything orchestra keeps for a demo repository, then the repository itself."""
    for place in (repo.worktrees_dir, repo.jails_dir):
        shutil.rmtree(place, ignore_errors=True)
    shutil.rmtree(repo.root)
