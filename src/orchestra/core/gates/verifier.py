"""Keep a run's gates fresh: verify its tree, then re-verify whenever the worktree changes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from orchestra.core.base.watch import Notifier
from orchestra.core.git.actor import actor_identity, current_actor
from orchestra.core.git.diffs import candidate_fields, touched_paths, tree_of
from orchestra.core.git.links import symlinks_leaving
from orchestra.core.git.snapshot import branch_tip, snapshot
from orchestra.core.git.worktrees import RunTree, WorktreeCorrupted
from orchestra.core.gates.boundary import check_boundary
from orchestra.core.gates.commands import GateSlots, Launch, gate_log_path, plain_launch, run_check
from orchestra.core.gates.evidence import CheckContext, RunElsewhere, judge
from orchestra.core.gates.secret_scan import scan_gate
from orchestra.core.runs.lifecycle import TransitionRefused, transition
from orchestra.core.runs.run import SECRETS_GATE, Gate, Run, review_gate_name
from orchestra.core.runs.store import RunStore
from orchestra.core.score.roles import INFRA_SYNTAX_GATE, role_check_names, role_of

WATCH_DEBOUNCE_MS = 300
# How a reviewer reviews: (the run, the reviewer's agent config, the tree) → its gate (see gates.review).
Review = Callable[[Run, dict, str], Awaitable[Gate]]
# A watcher whose worktree has not changed for this long (and whose gates are final) stops; opening the
# fleet (Fleet.resume_watchers) or a decision starts it again. ORCHESTRA_WATCH_IDLE (seconds) overrides it.
WATCH_IDLE = 2 * 3600.0
# A watcher whose gates are final hands over to a lean one once the worktree has held still this long (or a
# quarter of the idle time, when that is shorter): not at once, so a burst of runs reaching review together
# is not slowed by each one changing process.
LEAN_AFTER = 30.0


# Set by a lean watcher handing back after its idle time (see supervise.lean_watch): when the worktree last
# held still, in seconds since the epoch.
QUIET_SINCE_VARIABLE = "ORCHESTRA_QUIET_SINCE"


def handed_quiet_since() -> float:
    """When the worktree last held still, as a lean watcher handing back says (taken out of the environment,
    so no gate inherits it); now, when none does."""
    try:
        return float(os.environ.pop(QUIET_SINCE_VARIABLE, "") or time.time())
    except ValueError:
        return time.time()


def watch_idle() -> float:
    """Seconds of no change after which a review run's watcher stops."""
    try:
        return max(0.1, float(os.environ.get("ORCHESTRA_WATCH_IDLE") or WATCH_IDLE))
    except ValueError:
        return WATCH_IDLE


REPORT_KEYS = ("junit", "sarif", "coverage")


def report_paths(run: Run) -> list[str]:
    """The worktree paths of the reports the run's checks write."""
    checks = (run.spec_config or {}).get("verify", [])
    return [check[key] for check in checks if isinstance(check, dict) for key in REPORT_KEYS if check.get(key)]


def _remove_report(worktree: Path, relative: str) -> None:
    """Remove a check's old report in the worktree (only a plain file inside it; never follows a link out)."""
    path = worktree / relative
    try:
        if path.resolve().is_relative_to(worktree.resolve()) and (path.is_symlink() or path.is_file()):
            path.unlink()
    except OSError:
        pass


def boundary_gate(run: Run, tree: str, paths: list[str] | None = None,
                  links: list[tuple[str, str]] | None = None) -> Gate:
    """The boundary gate for the paths a run touched (default: its changed paths) against its spec and its
    agent's role; links are (path, target) of symlinks it added that lead outside the repository, and fail it too."""
    spec = run.spec_config or {}
    paths = run.changed_paths if paths is None else paths
    result = check_boundary(paths, spec.get("allow", ()), spec.get("deny", ()), role_of(run.agent_config))
    gate = Gate(name="boundary", kind="boundary", tree=tree, started=time.time(), finished=time.time())
    gate.failures = result.violations() + [
        f"{path} -> {_printable(target)} (symlink leads outside the repository)" for path, target in links or ()]
    gate.status = "failed" if gate.failures else "passed"
    gate.summary = f"{len(gate.failures)} path(s) out of bounds" if gate.failures else "within bounds"
    return gate


def _printable(text: str) -> str:
    """text, or its escaped repr when it holds characters a terminal would act on."""
    return text if text.isprintable() else repr(text)


def error_gate(name: str, kind: str, tree: str | None, started: float, error: BaseException) -> Gate:
    """The gate that stands for one that could not be produced: status "error", why in one line."""
    lines = str(error).strip().splitlines()
    reason = lines[0][:300] if lines else type(error).__name__
    return Gate(name=name, kind=kind, status="error", tree=tree, started=started, finished=time.time(),
                summary=f"could not verify: {reason}")


class Verifier:
    """Runs one verification pass at a time for a run; a change during a pass queues one rerun."""

    def __init__(self, store: RunStore, run_id: str, tree: RunTree, stop_event: asyncio.Event,
                 launch: Launch = plain_launch, review: Review | None = None,
                 run_elsewhere: RunElsewhere | None = None, on_gate: Callable[[Gate], None] | None = None) -> None:
        self.store, self.run_id, self.tree, self.worktree = store, run_id, tree, tree.path
        self.on_gate = on_gate  # told of each gate saved (the supervisor's autonomy policy)
        self.launch = launch  # how a check starts: in the run's jail
        self.review = review  # how a reviewer reviews the run's tree (None: reviews are not run here)
        self.reviewing = True  # False while a workflow's stage is checked: the review comes after the last stage
        self.run_elsewhere = run_elsewhere  # how a check runs on another tree (benchmarks, proving tests)
        self.stop_event = stop_event
        self.absorbing = False  # the watcher is committing an edit: a stop waits for it
        # Commits are read in the common git dir, never through the worktree's (agent-writable) .git file.
        self.git_dir = store.state_dir
        self.dirty = asyncio.Event()
        # The watch may end once the gates are final and the worktree holds still, for a leaner process to go on
        # watching (if may_go_lean: the supervisor's choice, see supervise.lean_watch); lean then says it did,
        # quiet_since since when the worktree has held still and watched_until until when it was watched.
        self.may_go_lean, self.lean = False, False
        self.quiet_since, self.watched_until = handed_quiet_since(), time.time()
        # The worktree's notifier: started by the supervisor before it commits the agent's work (start_watching),
        # so no edit made after that commit goes unseen and none needs looking for; else by watch().
        self.notifier: Notifier | None = None

    def start_watching(self) -> None:
        """Start noticing changes in the worktree now (blocking: sets up a watch on each of its directories); what
        changed before is the caller's to commit. A failure here is left for watch() to meet again and report."""
        if self.notifier is None:
            try:
                self.notifier = Notifier(str(self.worktree))
            except Exception:  # noqa: BLE001 - e.g. the system's limit on watches: watch() tries again, and says so
                return

    def save_gate(self, gate: Gate) -> None:
        self.store.update(self.run_id, lambda run: run.gates.__setitem__(gate.name, gate))
        self.store.append_events(self.run_id, [{"type": "gate", "name": gate.name, "status": gate.status,
                                                "summary": gate.summary, "tree": gate.tree}])
        if self.on_gate is not None:
            self.on_gate(gate)

    async def verify_and_watch(self) -> None:
        """Verify, and again on every change, until the worktree goes or a stop is asked for.

        A stop does not wait for the file watcher to notice it (it looks every 50 ms): unless the watcher
        is committing an edit at that moment, it is left behind, and the supervisor ends (exit_now)."""
        if not self.verified():
            self.dirty.set()
        passes = asyncio.ensure_future(self.verify_when_dirty())
        watcher = asyncio.ensure_future(self.watch())
        stopped = asyncio.ensure_future(self.stop_event.wait())
        try:
            await asyncio.wait([watcher, stopped], return_when=asyncio.FIRST_COMPLETED)
            if watcher.done() or self.absorbing:
                await watcher
        finally:
            stopped.cancel()
            passes.cancel()
            try:
                await passes
            except asyncio.CancelledError:
                pass

    def verified(self) -> bool:
        """Whether every gate already has a final result on the run's current tree (a watcher resumed
        after a refused decision, say, need not verify the same tree again)."""
        run = self.store.load(self.run_id)
        return run.tree is not None and all(
            name in run.gates and run.gates[name].tree == run.tree
            and run.gates[name].status not in ("pending", "running") for name in run.expected_gates())

    async def verify_when_dirty(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            await self.verify_pass()

    async def verify_pass(self) -> None:
        """Verify the run's tree: the boundary, then each check; a gate that breaks ends as "error"."""
        run = self.store.load(self.run_id)
        tree = run.tree or tree_of(self.git_dir, run.candidate or run.branch)
        started = time.time()
        try:
            gate = await asyncio.to_thread(self.bounds, run, tree)
        except Exception as error:  # e.g. a glob recorded before globs were validated
            gate = error_gate("boundary", "boundary", tree, started, error)
        self.save_gate(gate)
        started = time.time()
        try:
            gate = await asyncio.to_thread(scan_gate, self.git_dir, run.merge_base or run.base, tree)
        except Exception as error:
            gate = error_gate(SECRETS_GATE, "secrets", tree, started, error)
        self.save_gate(gate)
        for check in (run.spec_config or {}).get("verify", []):
            if self.dirty.is_set() or self.stop_event.is_set():
                return  # the tree moved on: the next pass verifies the newer one
            name, started = str(check.get("name", "")), time.time()
            self.save_gate(Gate(name=name, status="running", tree=tree, started=started))
            try:
                gate = await self.run_one(check, tree)
                gate = await judge(self.context(run, check, tree), gate)
            except Exception as error:
                gate = error_gate(name, "command", tree, started, error)
            self.save_gate(gate)
        for name in role_check_names(run.agent_config, run.spec_config, run.changed_paths):
            if self.dirty.is_set() or self.stop_event.is_set():
                return
            started = time.time()
            self.save_gate(Gate(name=name, status="running", tree=tree, started=started))
            try:
                gate = await self.role_gate(run, name, tree)
            except Exception as error:
                gate = error_gate(name, "command", tree, started, error)
            self.save_gate(gate)
        for reviewer in run.reviewers():
            if self.dirty.is_set() or self.stop_event.is_set() or self.review is None or not self.reviewing:
                return
            name, started = review_gate_name(reviewer["name"]), time.time()
            self.save_gate(Gate(name=name, kind="review", status="running", tree=tree, started=started))
            try:
                gate = await self.review(self.store.load(self.run_id), reviewer, tree)
            except Exception as error:
                gate = error_gate(name, "review", tree, started, error)
            self.save_gate(gate)

    def context(self, run: Run, check: dict, tree: str) -> CheckContext:
        """What judging a check may use (see gates.evidence)."""
        return CheckContext(run=run, check=check, tree=tree, worktree=self.worktree, git_dir=self.git_dir,
                            since=run.merge_base or run.base, run_elsewhere=self.run_elsewhere,
                            cache_dir=self.store.run_dir(self.run_id) / "gates")

    async def role_gate(self, run: Run, name: str, tree: str) -> Gate:
        """One gate the agent's role adds (an infra agent's validations, see gates.infra)."""
        from orchestra.core.gates import infra
        if name == INFRA_SYNTAX_GATE:
            return await asyncio.to_thread(infra.syntax_gate, name, self.git_dir, tree, run.changed_paths)
        missing = infra.terraform_missing(self.launch("true")[1].get("PATH"), name, tree)
        if missing is not None:
            return missing
        dirs = infra.terraform_dirs(run.changed_paths, self.worktree)
        if not dirs:
            return infra.nothing_left(name, tree, "no directory with changed .tf files is left")
        check = {"name": name, "command": infra.terraform_command(dirs), "timeout": infra.TERRAFORM_TIMEOUT}
        return await self.run_one(check, tree)

    def bounds(self, run: Run, tree: str) -> Gate:
        """The boundary gate of tree (blocking: runs git)."""
        # Checked without rename detection: moving a file out of a denied path touches that path too.
        since = run.merge_base or run.base
        touched = touched_paths(self.git_dir, since, tree)
        return boundary_gate(run, tree, touched, symlinks_leaving(self.git_dir, since, tree))

    async def run_one(self, check: dict, tree: str) -> Gate:
        """Run one verify check under a gate slot; its log only ever goes to the run's gates/ directory."""
        log_path = gate_log_path(self.store.run_dir(self.run_id), check.get("name"))
        timeout = float(check.get("timeout") or 600)
        for key in REPORT_KEYS:  # a report left from before (or committed by the agent) is never read as this run's
            if check.get(key):
                await asyncio.to_thread(_remove_report, self.worktree, check[key])
        slots = GateSlots(self.store.state_dir / "gate-slots")
        await asyncio.to_thread(slots.acquire)
        try:
            return await run_check(check["name"], check["command"], self.worktree, tree, log_path, timeout,
                                   check.get("junit"), self.launch, self.store.redact)
        finally:
            slots.release()

    async def watch(self) -> None:
        # The reports checks write (JUnit, SARIF, coverage) are theirs, never an edit of the candidate.
        junit_paths = report_paths(self.store.load(self.run_id))
        idle, quiet_since = watch_idle(), self.quiet_since
        if self.notifier is None:  # a resumed watcher: watch first, then commit what changed while nobody watched
            self.notifier = await asyncio.to_thread(Notifier, str(self.worktree))
            await self.absorb(junit_paths)
        # It wakes without a change at most every 5 s, to notice it has been idle.
        timeout_ms = round(min(idle / 2, 5.0) * 1000)
        try:
            while True:
                changes = await asyncio.to_thread(self.notifier.wait, WATCH_DEBOUNCE_MS, timeout_ms, self.stop_event)
                if changes is None:
                    return  # a stop was asked for
                self.watched_until = time.time()  # what changes after this, a lean watcher must look for itself
                if not changes and not self.may_go_lean and time.time() - quiet_since < idle:
                    continue
                if not self.worktree.exists() or not await asyncio.to_thread(self.in_review):
                    return  # gone, or decided: a decided run is never watched (nor committed to)
                if changes:
                    quiet_since = time.time()
                    await self.absorb(junit_paths)
                elif not await asyncio.to_thread(self.verified):
                    continue
                elif time.time() - quiet_since >= idle:
                    self.store.append_events(self.run_id, [{"type": "note", "text": (
                        f"no change in the worktree for {idle:g} seconds: stopped watching it (opening the fleet, "
                        "or a decision, starts again)")}])
                    return
                elif time.time() - quiet_since >= min(LEAN_AFTER, idle / 4):
                    self.lean, self.quiet_since = True, quiet_since
                    return
        finally:
            notifier, self.notifier = self.notifier, None
            try:
                notifier.close()
            except RuntimeError:  # still waiting in its thread (the watch was cancelled): it ends with the process
                pass

    def in_review(self) -> bool:
        return self.store.load(self.run_id).state == "review"

    async def absorb(self, junit_paths: list[str]) -> None:
        self.absorbing = True
        try:
            changed = await asyncio.to_thread(self.absorb_changes, junit_paths)
        finally:
            self.absorbing = False
        if changed:
            self.dirty.set()

    def absorb_changes(self, exclude: list[str]) -> bool:
        """Commit edits made in the worktree during review (as the conductor, onto the run's branch only);
        return whether the tree changed. A worktree that no longer belongs to the run ends the watch."""
        run = self.store.load(self.run_id)
        extra = tuple(exclude)
        conductor = actor_identity(current_actor(self.git_dir))
        try:
            commit = snapshot(self.tree, conductor, f"Edits made during review of run {run.id}", extra)
        except WorktreeCorrupted as error:
            self.stop_event.set()
            try:
                transition(self.store, self.run_id, "failed", f"{error}; orchestra committed nothing from it",
                           expect=frozenset({"review"}))
            except TransitionRefused:
                pass
            return False
        if commit is None:
            return False
        self.store.set(self.run_id, **candidate_fields(self.git_dir, branch_tip(self.tree),
                                                       f"refs/heads/{run.target}", run.base))
        self.store.append_events(self.run_id, [{"type": "note", "text": f"worktree changed during review: "
                                                f"committed as {commit[:10]}, verifying again"}])
        return True
