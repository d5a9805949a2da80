"""The use-cases the UI and the CLI share: spawn, read, decide (see decisions), stop, resume."""

from __future__ import annotations

import dataclasses
import time
from functools import cached_property
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import ActionRefused, BadUsage, OrchestraError
from orchestra.core.base.findings import Finding, findings_of
from orchestra.core.fleet.journal import UPDATE_STATE, Journal
from orchestra.core.git.repo import Repository
from orchestra.core.runs.lifecycle import ACTIONS, allowed, create, refusal, replace_damaged, transition
from orchestra.core.runs.run import Run
from orchestra.core.runs.store import DamagedRun, RunStore
from orchestra.core.score import DEFAULT_DISPOSABLE, Agent, Score, Spec
from orchestra.core.score.load import independence_problem

# What only spawning, deciding, stopping or cleaning uses (decisions, the ledger and its signing, trust,
# snapshots, cleanup, the jail, processes; worktrees too, which only the target's check needs at start) is
# imported inside the methods that use it: opening the fleet for the UI's first frame then loads none of it
# (about 40 ms of imports).
if TYPE_CHECKING:
    from orchestra.core.fleet.decisions import Decisions
    from orchestra.core.git.worktrees import RunTree
    from orchestra.core.ledger import Ledger
    from orchestra.core.supervise.processes import SupervisorBatch
    from orchestra.core.fleet.placement import Placement

STARTING_GRACE = 30.0  # seconds a new run may go without a recorded supervisor


def probe():  # noqa: ANN201  (the jail's SandboxStatus) — a function here so tests can stand in for the probe
    """Whether this machine can make a sandbox (the jail loads only when a run starts)."""
    from orchestra.core.jail import probe as probe_jail
    return probe_jail()


class Fleet:
    """Every run of one repository, and the decisions on them."""

    def __init__(self, repo: Repository, score: Score | None) -> None:
        self.repo, self.score = repo, score
        self.store = RunStore(repo.state_dir)
        self.journal = Journal(repo.state_dir)

    @cached_property
    def ledger(self) -> Ledger:
        from orchestra.core.ledger import open_ledger  # chain, signing, anchor: only for decisions and reports
        return open_ledger(self.repo)

    @cached_property
    def decisions(self) -> Decisions:
        from orchestra.core.fleet.decisions import Decisions  # merge, policy, processes: only when deciding
        return Decisions(self)

    @property
    def disposable(self) -> tuple[str, ...]:
        return self.score.disposable if self.score else DEFAULT_DISPOSABLE

    def disposable_for(self, run: Run) -> tuple[str, ...]:
        """What may be deleted with a run's worktree: the score's disposable globs, and the files
        .worktreeinclude copied in that are still unchanged (copies of the checkout's own)."""
        from orchestra.core.git.includes import unchanged_copies
        return self.disposable + unchanged_copies(self.store.run_dir(run.id), Path(run.worktree))

    def target_branch(self) -> str:
        from orchestra.core.git import worktrees
        target = (self.score.target if self.score else None) or self.repo.current_branch()
        if not target:
            raise OrchestraError("HEAD is detached and orchestra.toml names no target branch: "
                                 "check out a branch or set `target` under [orchestra].")
        if not worktrees.branch_exists(self.repo, target):
            raise OrchestraError(f"The target branch {target!r} does not exist.")
        return target

    # -- spawning ---------------------------------------------------------------------------
    def spawn(self, spec_id: str | None, agent_names: list[str] | None = None,
              task: str | None = None, trust: bool = False, count: int | None = None,
              host: str | None = None) -> list[Run]:
        """Start one run per agent on a spec (or a free-text task), each in a fresh worktree; count: that many
        runs, the agents taken in turn (best-of-N: `orchestra spawn SPEC --n 3`), compared as one group.

        Setup commands not yet allowed here are refused (UntrustedSetup) unless trust, which records it."""
        from orchestra.core.fleet.trust import require_trust, setup_commands
        spec, agents = self._plan(spec_id, agent_names, task)
        if count is not None:
            agents = candidates_of(agents, count)
        plan: list[tuple[Agent, Spec | None]] = [(agent, spec) for agent in agents]
        if spec is not None and spec.parts:  # one run per part, each held to its own boundary (fleet.integration)
            from orchestra.core.fleet.integration import part_plan
            plan = list(part_plan(self.score, spec, agent_names, count))
        from orchestra.core.fleet.placement import Placer
        placer = Placer(self, host, [agent for agent, _spec in plan])  # checked before anything is started
        self.check_sandbox()
        require_trust(self.repo.root, setup_commands(self.score, spec), trust)
        target = self.target_branch()
        base = self.repo.resolve(target)
        from orchestra.core.git.actor import current_actor
        starter = current_actor(self.repo.root)  # approval rules: who started a run cannot approve it alone
        started: list[Run] = []
        live_ports: set[tuple[str, str]] = set()  # port holders found live: read once per spawn, not once per run
        from orchestra.core.supervise.processes import SupervisorBatch  # forks several runs' supervisors at once
        self.store.make_private()  # the launcher's log lives there, and a first spawn comes before any run
        batch = SupervisorBatch(self.repo.state_dir, self.repo.root) if len(plan) > 1 else None
        try:
            with placer:
                for agent, held_to in plan:  # one group per spawn: named after its first run, so the UI shows them
                    group = started[0].group if started else None  # together
                    started.append(placer.placed(self._spawn_one(
                        agent, held_to, task or (held_to.intent if held_to else ""), target, base, group, live_ports,
                        batch, starter, placer.where(agent))))
        finally:
            if batch is not None:
                pids = batch.finish()
                started = [self._recorded(run.id, pids[run.id]) if run.id in pids else run for run in started]
        return started

    def _plan(self, spec_id: str | None, names: list[str] | None, task: str | None) -> tuple[Spec | None, list[Agent]]:
        if self.score is None:
            raise OrchestraError("There is no orchestra.toml here: `orchestra init` writes a starter one.")
        spec = None
        if spec_id:
            try:
                spec = self.score.spec(spec_id)
            except KeyError:
                known = ", ".join(s.id for s in self.score.specs) or "none"
                raise OrchestraError(f"There is no spec {spec_id!r} in orchestra.toml (specs: {known}).") from None
            if spec.draft:
                raise OrchestraError(f"{spec.source or f'Spec {spec.id!r} in orchestra.toml'} is a draft: read and "
                                     "edit it, then remove `draft = true`; nothing was started.")
        elif not (task and task.strip()):
            raise OrchestraError("Name a spec, or give a task: `orchestra spawn --task TEXT --agent NAME`.")
        if names:
            agents = [self._agent(name) for name in names]
        elif spec is not None:
            agents = list(self.score.agents_for(spec))
        else:
            raise OrchestraError("A free-text task needs at least one agent: add `--agent NAME`.")
        if not agents:
            raise OrchestraError("No agents to run: add [[agents]] to orchestra.toml.")
        return spec, agents

    def _agent(self, name: str) -> Agent:
        assert self.score is not None
        try:
            return self.score.agent(name)
        except KeyError:
            known = ", ".join(a.name for a in self.score.agents) or "none"
            raise OrchestraError(f"There is no agent {name!r} in orchestra.toml (agents: {known}).") from None

    def sandbox_settings(self) -> dict[str, Any]:
        """The score's sandbox settings, as a run keeps them."""
        score = self.score
        return {"mode": score.sandbox if score else "auto", "read": list(score.sandbox_read) if score else []}

    def review_settings(self, author: Agent, spec: Spec | None) -> dict[str, Any] | None:
        """Who reviews a run of author on spec, as the run keeps it; None when nobody does. A reviewer that is
        not independent of the author as [review] asks is refused (the score refuses it for specs)."""
        score = self.score
        if score is None:
            return None
        reviewers = [reviewer for reviewer in score.reviewers_for(spec) if reviewer.name != author.name]
        if not reviewers:
            return None
        policy = score.review
        for reviewer in reviewers:
            problem = independence_problem(author, reviewer, policy.independence)
            if problem:
                raise OrchestraError(f"Cannot start: {problem}. Nothing was started.")
        from orchestra.core.base.providers import agent_vendor
        maker = agent_vendor(agent_config(author))
        return {"agents": [{**agent_config(reviewer), "vendor": agent_vendor(agent_config(reviewer))}
                           for reviewer in reviewers],
                "block_on": policy.block_on, "independence": policy.independence, "budget": policy.budget,
                "retries": policy.retries, "author_vendor": maker, "author_model": author.model}

    def check_sandbox(self) -> None:
        """Refuse to start runs the score requires a sandbox for, on a machine that cannot make one."""
        if self.score is not None and self.score.sandbox == "required":
            from orchestra.core.jail import JailRefused
            status = probe()
            if not status.works:
                raise JailRefused(f"The score requires a sandbox ([orchestra] sandbox = \"required\"), but "
                                  f"{status.reason}. Install bubblewrap, or set sandbox = \"auto\" to run agents "
                                  "unsandboxed (visibly). Nothing was started.")

    def _spawn_one(self, agent: Agent, spec: Spec | None, task: str, target: str, base: str,
                   group: str | None = None, live_ports: set[tuple[str, str]] | None = None,
                   batch: SupervisorBatch | None = None, starter: str | None = None,
                   where: Placement | None = None) -> Run:
        from orchestra.core.fleet.trust import setup_commands
        from orchestra.core.git import worktrees
        from orchestra.core.supervise.ports import allocate_block
        from orchestra.core.fleet.workflow import workflow_for
        scope = (f"{spec.id}--{spec.part}" if spec.part else spec.id) if spec else "task"
        # A directory of its own per run (refs/heads/orchestra/<scope>/<run>/): the run's jail may write
        # its own branch and no other.
        branch_of = lambda run_id: f"orchestra/{scope}/{run_id}/{agent.name}"  # noqa: E731
        run_id = self.new_run_id(branch_of)
        path = self.repo.worktrees_dir / run_id
        here = where is None or where.host is not None and where.host.local
        tree = worktrees.create_worktree(self.repo, path, branch_of(run_id), base) if here else None
        if not here:  # its branch is here from the start, at its base: what it does comes back onto it
            worktrees.create_branch(self.repo, branch_of(run_id), base)
        run = Run(id=run_id, agent=agent.name, spec=spec.id if spec else None, task=task, branch=branch_of(run_id),
                  worktree=str(path), base=base, target=target, agent_config=agent_config(agent),
                  spec_config=spec.to_dict() if spec else None, gitdir=str(tree.gitdir) if tree else None,
                  merge_base=base, sandbox_config=self.sandbox_settings(), setup=list(setup_commands(self.score, spec)),
                  port=allocate_block(self.repo.state_dir, run_id, live_ports) if tree else None,
                  review_config=self.review_settings(agent, spec), group=group or f"g{run_id.removeprefix('r')}",
                  started_by=starter, workflow=workflow_for(self.score, spec, agent) if self.score else None,
                  part_of={"spec": spec.id, "part": spec.part} if spec and spec.part else None)
        if where is not None:
            where.apply(run)
        create(self.store, run)
        if where is not None and where.host is None:  # every slot it may use is busy: it waits
            return where.wait(run)
        if batch is None:
            return self.start(run_id)
        batch.start(run_id)
        return run

    def new_run_id(self, branch_of: Callable[[str], str]) -> str:
        """A new run's id, neither its branch (branch_of(id)) nor its worktree's place taken."""
        from orchestra.core.git import worktrees
        return self.store.allocate_id(taken=lambda rid: worktrees.branch_exists(self.repo, branch_of(rid))
                                      or (self.repo.worktrees_dir / rid).exists())

    # -- reading ----------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        """Every run, after completing any decision a crash interrupted (unless one is under way)."""
        if self.journal.pending_files():  # nothing to converge (the usual case) loads no decision code
            self.decisions.converge(wait=False)
        if Journal(self.repo.state_dir / UPDATE_STATE).pending_files():
            from orchestra.core.fleet.update import converge_updates  # before a watcher resumes on a half-done update
            converge_updates(self)
        return [self.reconcile(run) for run in self.store.list()]

    def get(self, run_id: str) -> Run:
        """The run (a damaged record comes back as a damaged run, which can only be rejected)."""
        try:
            return self.reconcile(self.store.load(run_id))
        except DamagedRun as damaged:
            return damaged.run

    def reconcile(self, run: Run) -> Run:
        """Mark a queued or working run interrupted when its supervisor has died, and end what its agent left
        running (without a sandbox, nothing else does), so it can be rejected or redirected."""
        if run.damaged or not run.is_active or run.slot_wait:  # one waiting for a slot has no supervisor yet
            return run
        # Reading /proc and ending processes (ctypes): only for a run that should have a live supervisor.
        from orchestra.core.supervise.processes import end_agent_leftovers, supervisor_alive
        from orchestra.core.supervise.reaper import now_ticks
        if supervisor_alive(run):
            return run
        if run.supervisor_pid is None and time.time() - run.created < STARTING_GRACE:
            return run
        if run.is_remote:  # its relay is gone, not the run: it goes on at its host, and a relay takes it up again
            return self.start(run.id, mode="follow")
        message = ("orchestra's supervisor for this run is gone (killed, or the machine restarted) and its agent "
                   f"was ended. Its commits are on branch {run.branch}; what it left uncommitted in its worktree "
                   "is committed as the agent when you reject or redirect the run.") if run.started else (
            "orchestra's supervisor for this run is gone before its agent started: nothing was done yet. Redirect "
            "it to start it again, or reject it.")
        try:
            moved = transition(self.store, run.id, "interrupted", message, expect=ACTIONS["stop"],
                               supervisor_pid=None, agent_pgid=None, agent_start=None)
        except ActionRefused:
            return self.store.load(run.id)  # it moved on meanwhile
        # Only what started before now: a redirect from here on starts processes this must not end.
        end_agent_leftovers(run, until=now_ticks())
        return moved

    def tree(self, run: Run) -> RunTree:
        from orchestra.core.git import worktrees
        return worktrees.run_tree(self.repo, Path(run.worktree), run.branch, run.gitdir, run.id)

    def branch_tip(self, run: Run) -> str:
        from orchestra.core.git import worktrees
        return worktrees.git_rev(self.repo, run.branch)

    def diff(self, run: Run) -> str:
        """The run's whole patch against its merge base: what review shows and the ledger hashes."""
        from orchestra.core.git.diffs import unified_diff
        rev = run.candidate or run.branch
        return unified_diff(self.repo.root, run.merge_base or run.base, rev)

    def find_entry(self, decision: str) -> dict[str, Any] | None:
        """The ledger entry recorded for a decision, if any."""
        return next((entry for entry in reversed(self.ledger.entries()) if entry.get("decision") == decision), None)

    # -- deciding ---------------------------------------------------------------------------
    def accept(self, run_id: str, expected_candidate: str | None = None, actor: str | None = None,
               force: bool = False) -> Run:
        """Merge the run into its target with a merge commit, record it, and remove the worktree.

        A run that is not ready (policy.readiness) is refused with NotReady unless force."""
        from orchestra.core.git.actor import current_actor
        return self.decisions.accept(run_id, actor or current_actor(self.repo.root), expected_candidate, force)

    def reject(self, run_id: str, reason: str = "", actor: str | None = None) -> Run:
        """Stop the run, keep its work on its branch, record why, and remove the worktree."""
        from orchestra.core.git.actor import current_actor
        return self.decisions.reject(run_id, actor or current_actor(self.repo.root), reason)

    def revert(self, run_id: str, reason: str = "", actor: str | None = None) -> Run:
        """Undo an accepted run's merge on its target with a revert commit, and record it next to the accept."""
        from orchestra.core.git.actor import current_actor
        return self.decisions.revert(run_id, actor or current_actor(self.repo.root), reason)

    def redirect(self, run_id: str, instruction: str, actor: str | None = None,
                 findings: Sequence[Finding] = (), comments: Sequence[Finding] | None = None) -> Run:
        """Send the agent a correction: it works again, on top of what it did so far. findings (selected, or
        every open one) and the conductor's line comments (default: every unsent one) go with it as data."""
        from orchestra.core.git.actor import current_actor
        run = self.get(run_id)
        sent = findings_of(run.comments) if comments is None else list(comments)
        return self.decisions.redirect(run_id, actor or current_actor(self.repo.root), instruction,
                                       list(findings), sent)

    def comment(self, run_id: str, path: str, line: int, text: str, line_end: int | None = None) -> Finding:
        """Add the conductor's comment on a line of a run's diff (sent with the next redirect)."""
        if not text.strip():
            raise ActionRefused("A comment needs some text.")
        comment = Finding(title=text.strip().splitlines()[0][:200], body=text.strip(), priority="P1",
                          source="comment", path=path, line_start=line, line_end=line_end or line)
        def add(run: Run) -> None:  # the same words on the same line twice are one comment
            if all(Finding.from_json(c).id != comment.id for c in run.comments):
                run.comments.append(comment.to_json())
        self.store.update(run_id, add)
        return comment

    def uncomment(self, run_id: str, finding_id: str) -> None:
        """Drop one of the conductor's unsent comments."""
        def drop(run: Run) -> None:
            run.comments[:] = [c for c in run.comments if Finding.from_json(c).id != finding_id]
        self.store.update(run_id, drop)

    def stop(self, run_id: str) -> Run:
        """Stop a working agent; its work so far is committed and the run can be redirected later."""
        from orchestra.core.supervise.processes import stop_supervisor
        run = self.get(run_id)
        if not allowed("stop", run):
            raise ActionRefused(refusal("stop", run))
        self.stop_at_host(run)
        stop_supervisor(run, current=lambda: self.store.load(run.id))
        try:
            stopped = transition(self.store, run.id, "stopped", "stopped by the conductor", expect=ACTIONS["stop"],
                                 supervisor_pid=None)
        except ActionRefused:
            stopped = self.store.set(run.id, supervisor_pid=None)  # it finished on its own meanwhile
        self.dispatch()
        return stopped

    def resume_watchers(self) -> list[str]:
        """Restart verification watchers of review runs whose supervisor has gone."""
        from orchestra.core.supervise.processes import supervisor_alive
        resumed = []
        for run in self.store.list():
            if run.state == "review" and not supervisor_alive(run) and Path(run.worktree).is_dir():
                self.resume_watch(run)
                resumed.append(run.id)
        return resumed

    # -- steps of decisions -----------------------------------------------------------------
    def settle(self, run: Run, for_accept: bool, actor: str) -> Run:
        """Stop the run's supervisor and commit anything left in its worktree as actor, the conductor (edits
        left there since the agent finished are theirs), or, for an interrupted run, as its agent (its
        supervisor died before committing what the agent did); return the fresh record."""
        from orchestra.core.git.actor import actor_identity
        from orchestra.core.git.diffs import candidate_fields
        from orchestra.core.git.snapshot import settle
        from orchestra.core.git.worktrees import WorktreeCorrupted, agent_identity
        from orchestra.core.supervise.processes import stop_supervisor, supervisors_of
        if run.damaged:
            for pid in supervisors_of(self.repo.state_dir, run.id):
                stop_supervisor(dataclasses.replace(run, supervisor_pid=pid))
            return run
        self.stop_at_host(run)
        stop_supervisor(run, current=lambda: self.store.load(run.id))
        run = self.store.load(run.id)
        # A remote run's worktree is at its host (its supervisor there commits it); where no agent worked, a worktree
        # may be empty or half checked out, and committing that would delete every file.
        if run.is_remote or not Path(run.worktree).is_dir() or run.started is None:
            return run
        tree = self.tree(run)
        interrupted = run.state == "interrupted"
        identity = agent_identity(run.agent) if interrupted else actor_identity(actor)
        message = (f"{run.agent}: work in progress on run {run.id} (interrupted)\n\nTask: {run.task}\n" if interrupted
                   else f"Work left in run {run.id}'s worktree")
        try:
            settled = settle(tree, run.id, run.base, identity, message)
        except WorktreeCorrupted as error:
            if for_accept:
                raise ActionRefused(f"Run {run.id} cannot be accepted: {error}. Nothing was changed; "
                                    "reject it (its branch is kept).") from None
            return run
        if settled.commit and interrupted:
            self.store.append_events(run.id, [{"type": "note", "text": (
                f"committed what the agent left when its supervisor was interrupted, as {run.agent}: "
                f"{settled.commit[:10]}")}])
        if settled.commit or settled.escapes:
            values = candidate_fields(self.repo.root, settled.tip or self.branch_tip(run), f"refs/heads/{run.target}",
                                      run.base)
            run = self.store.set(run.id, escapes=[*run.escapes, *settled.escapes], **values)
        return run

    def clean(self, run: Run) -> Run:
        """Remove a decided run's worktree unless something in it would be lost; record what was kept."""
        from orchestra.core.git.cleanup import remove_worktree
        if run.is_remote:
            from orchestra.core.fleet.placement import clean_at_host
            return clean_at_host(self, run)
        if run.damaged or run.kept is not None and not Path(run.worktree).exists():
            return run
        kept = remove_worktree(self.repo, self.tree(run), self.disposable_for(run))
        if kept is None:
            return self.store.set(run.id, kept=None) if run.kept else run
        return self.store.set(run.id, kept=kept.to_json(), message=f"{run.message}; {kept.describe()}")

    def close_damaged(self, run: Run, entry: dict[str, Any]) -> Run:
        """A damaged run's reject: a fresh record replaces the unreadable one (which is kept beside it)."""
        return replace_damaged(self.store, run, "rejected", (
            f"rejected by {entry['actor']} (its record was damaged and has been replaced)"),
            decision={"id": entry.get("decision"), "action": "reject", "actor": entry["actor"], "time": entry["time"],
                      "ledger_hash": entry["hash"]})

    def stop_at_host(self, run: Run) -> None:
        """A remote run whose relay is gone: its supervisor at its host is stopped directly (a live relay stops it
        itself when it is stopped)."""
        from orchestra.core.supervise.processes import supervisor_alive
        if run.is_remote and not run.slot_wait and not supervisor_alive(run):
            from orchestra.core.fleet.placement import stop_at_host
            stop_at_host(self, run)

    def dispatch(self) -> None:
        """Start what waits for a slot, now that one may be free (nothing to do, and nothing read, when nothing
        waits)."""
        from orchestra.core.runs.store import anything_waits
        if anything_waits(self.repo.state_dir):
            from orchestra.core.fleet.placement import dispatch
            dispatch(self)

    def resume_watch(self, run: Run) -> None:
        if run.state == "review" and Path(run.worktree).is_dir():
            self.start(run.id, mode="watch")

    def start(self, run_id: str, mode: str = "run") -> Run:
        """Start a supervisor for the run and record it (unless it was quicker to record itself)."""
        from orchestra.core.supervise.processes import start_supervisor
        self.store.set(run_id, supervisor_pid=None)
        return self._recorded(run_id, start_supervisor(self.repo.state_dir, run_id, self.repo.root, mode=mode))

    def _recorded(self, run_id: str, pid: int) -> Run:
        """The run with its supervisor's pid recorded (unless the supervisor was quicker to record itself)."""
        return self.store.update(run_id, lambda r: setattr(r, "supervisor_pid", r.supervisor_pid or pid))


def agent_config(agent: Agent) -> dict[str, Any]:
    """The agent as the run keeps it: every setting but secrets (api_key_env is a variable's name)."""
    return dataclasses.asdict(agent)


MAX_CANDIDATES = 16  # best-of-N: more runs of one spec than this is a typo, not a plan


def candidates_of(agents: list[Agent], count: int) -> list[Agent]:
    """count runs' agents: the agents in turn (N of one agent when only one is named)."""
    if not 1 <= count <= MAX_CANDIDATES:
        raise BadUsage(f"--n must be between 1 and {MAX_CANDIDATES}, not {count}. Nothing was started.")
    return [agents[i % len(agents)] for i in range(count)]
