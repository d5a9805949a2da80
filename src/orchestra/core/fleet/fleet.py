"""The use-cases the UI and the CLI share: spawn, accept, reject, redirect, stop."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

from orchestra.core.git import worktrees
from orchestra.core.git.actor import actor_identity, current_actor
from orchestra.core.base.errors import ActionRefused, OrchestraError
from orchestra.core.base.canonical import content_hash
from orchestra.core.ledger.chain import Ledger, LedgerError
from orchestra.core.git.merge import merge_candidate
from orchestra.core.supervise.processes import start_supervisor, stop_supervisor, supervisor_alive
from orchestra.core.git.repo import Repository
from orchestra.core.runs.run import Run
from orchestra.core.base.files import file_lock
from orchestra.core.runs.store import RunStore
from orchestra.core.score import Agent, Score, Spec

STARTING_GRACE = 30.0  # seconds a new run may go without a recorded supervisor


class Fleet:
    """Every run of one repository, and the decisions on them."""

    def __init__(self, repo: Repository, score: Score | None) -> None:
        self.repo, self.score = repo, score
        self.store = RunStore(repo.state_dir)
        self.ledger = Ledger(repo.ledger_path)

    def target_branch(self) -> str:
        target = (self.score.target if self.score else None) or self.repo.current_branch()
        if not target:
            raise OrchestraError("HEAD is detached and orchestra.toml names no target branch: "
                                 "check out a branch or set `target` under [orchestra].")
        if not worktrees.branch_exists(self.repo, target):
            raise OrchestraError(f"The target branch {target!r} does not exist.")
        return target

    # -- spawning ---------------------------------------------------------------------------
    def spawn(self, spec_id: str | None, agent_names: list[str] | None = None,
              task: str | None = None) -> list[Run]:
        """Start one run per agent on a spec (or a free-text task), each in a fresh worktree."""
        spec, agents = self._plan(spec_id, agent_names, task)
        target = self.target_branch()
        base = self.repo.resolve(target)
        return [self._spawn_one(agent, spec, task or (spec.intent if spec else ""), target, base) for agent in agents]

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

    def _spawn_one(self, agent: Agent, spec: Spec | None, task: str, target: str, base: str) -> Run:
        scope = spec.id if spec else "task"
        branch_of = lambda run_id: f"orchestra/{scope}/{run_id}-{agent.name}"  # noqa: E731
        run_id = self.store.allocate_id(
            taken=lambda rid: worktrees.branch_exists(self.repo, branch_of(rid))
            or (self.repo.worktrees_dir / rid).exists())
        path = self.repo.worktrees_dir / run_id
        worktrees.create_worktree(self.repo, path, branch_of(run_id), base)
        run = Run(id=run_id, agent=agent.name, spec=spec.id if spec else None, task=task, branch=branch_of(run_id),
                  worktree=str(path), base=base, target=target, agent_config=agent_config(agent),
                  spec_config=spec.to_dict() if spec else None)
        self.store.save(run)
        self.store.append_events(run_id, [{"type": "state", "state": "queued", "message": ""}])
        return self._start(run_id)

    # -- reading ----------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        return [self.reconcile(run) for run in self.store.list()]

    def get(self, run_id: str) -> Run:
        return self.reconcile(self.store.load(run_id))

    def reconcile(self, run: Run) -> Run:
        """Mark a queued or working run failed when its supervisor has died, so it can be restarted."""
        if not run.is_active or supervisor_alive(run):
            return run
        if run.supervisor_pid is None and time.time() - run.created < STARTING_GRACE:
            return run
        message = ("orchestra's supervisor for this run is gone (killed, or the machine restarted); "
                   f"the work so far is on branch {run.branch}. Redirect the run to start it again.")

        def change(stored: Run) -> None:
            if stored.is_active and not supervisor_alive(stored):
                stored.state, stored.message, stored.supervisor_pid = "failed", message, None
        run = self.store.update(run.id, change)
        self.store.append_events(run.id, [{"type": "state", "state": run.state, "message": run.message}])
        return run

    def diff(self, run: Run) -> str:
        """The run's whole patch against its base."""
        rev = run.candidate or run.branch
        return worktrees.unified_diff(self.repo.root, run.base, rev)

    # -- deciding ---------------------------------------------------------------------------
    def accept(self, run_id: str, expected_candidate: str | None = None, actor: str | None = None) -> Run:
        """Merge the run into its target with a merge commit, record it, and remove the worktree."""
        actor = actor or current_actor(self.repo.root)
        with file_lock(self.repo.state_dir / "decide.lock"):
            run = self._open_decision(run_id, "accept")
            if expected_candidate and run.candidate != expected_candidate:
                self._resume_watch(run)
                raise ActionRefused(f"Run {run.id} changed since you looked at it: review it again. Nothing was changed.")
            message = merge_message(run, actor)
            try:
                merged = merge_candidate(self.repo, run.target, run.candidate or run.branch, message, actor_identity(actor))
            except ActionRefused:
                self._resume_watch(run)
                raise
            entry = self._record("accept", run, actor, merge_commit=merged.commit)
            return self._close(run, "accepted", entry, merge_commit=merged.commit)

    def reject(self, run_id: str, reason: str = "", actor: str | None = None) -> Run:
        """Stop the run, keep its work on its branch, record why, and remove the worktree."""
        actor = actor or current_actor(self.repo.root)
        with file_lock(self.repo.state_dir / "decide.lock"):
            run = self._open_decision(run_id, "reject")
            entry = self._record("reject", run, actor, reason=reason)
            return self._close(run, "rejected", entry)

    def redirect(self, run_id: str, instruction: str, actor: str | None = None) -> Run:
        """Send the agent a correction: it works again, on top of what it did so far."""
        actor = actor or current_actor(self.repo.root)
        if not instruction.strip():
            raise ActionRefused("A redirect needs an instruction for the agent.")
        with file_lock(self.repo.state_dir / "decide.lock"):
            run = self._open_decision(run_id, "redirect")
            entry = self._record("redirect", run, actor, instruction=instruction)

            def change(stored: Run) -> None:
                stored.redirects.append(instruction)
                stored.state, stored.message = "working", f"redirected by {actor}"
                stored.decision = {"action": "redirect", "actor": actor, "time": entry["time"]}
            self.store.update(run.id, change)
            self.store.append_events(run.id, [{"type": "state", "state": "working", "message": "redirected"}])
            return self._start(run.id)

    def stop(self, run_id: str) -> Run:
        """Stop a working agent; its work so far is committed and the run can be redirected later."""
        run = self.get(run_id)
        if not allowed("stop", run):
            raise ActionRefused(f"Run {run.id} is not working (it is {run.state}).")
        stop_supervisor(run)

        def change(stored: Run) -> None:
            if stored.is_active:
                stored.state, stored.message = "stopped", "stopped by the conductor"
            stored.supervisor_pid = None
        run = self.store.update(run.id, change)
        self.store.append_events(run.id, [{"type": "state", "state": run.state, "message": run.message}])
        return run

    def resume_watchers(self) -> list[str]:
        """Restart verification watchers of review runs whose supervisor has gone."""
        resumed = []
        for run in self.store.list():
            if run.state == "review" and not supervisor_alive(run) and Path(run.worktree).is_dir():
                self._resume_watch(run)
                resumed.append(run.id)
        return resumed

    # -- helpers ----------------------------------------------------------------------------
    def _check_ledger(self) -> None:
        """Refuse a decision up front when the ledger cannot record it (else a merge would go unrecorded)."""
        try:
            self.ledger.check_appendable()
        except LedgerError as error:
            raise ActionRefused(f"The sign-off ledger cannot record this decision: {error}.\n"
                                f"Nothing was changed. `orchestra ledger verify` shows what is wrong "
                                f"with {self.ledger.path}.") from None

    def _open_decision(self, run_id: str, action: str) -> Run:
        """Under the decide lock: check the action is allowed and recordable, then settle the run."""
        run = self.get(run_id)
        if not allowed(action, run):
            raise ActionRefused(refusal(action, run))
        self._check_ledger()
        return self._settle(run)

    def _settle(self, run: Run) -> Run:
        """Stop the run's supervisor and commit anything left in its worktree; return the fresh record."""
        stop_supervisor(run)
        run = self.store.load(run.id)
        worktree = Path(run.worktree)
        if worktree.is_dir() and worktrees.snapshot(worktree, run.agent, f"Work left in run {run.id}'s worktree",
                                                    as_user=True):
            run = self.store.set(run.id, **worktrees.candidate_fields(worktree, run.base))
        return run

    def _resume_watch(self, run: Run) -> None:
        self._start(run.id, mode="watch")

    def _start(self, run_id: str, mode: str = "run") -> Run:
        """Start a supervisor for the run and record it (unless it was quicker to record itself)."""
        self.store.set(run_id, supervisor_pid=None)
        pid = start_supervisor(self.repo.state_dir, run_id, self.repo.root, mode=mode)
        return self.store.update(run_id, lambda r: setattr(r, "supervisor_pid", r.supervisor_pid or pid))

    def _record(self, action: str, run: Run, actor: str, **extra: Any) -> dict[str, Any]:
        candidate = run.candidate or worktrees.git_rev(self.repo, run.branch)
        patch = worktrees.unified_diff(self.repo.root, run.base, candidate)
        fields: dict[str, Any] = {
            "action": action, "run": run.id, "agent": run.agent, "actor": actor,
            "spec": run.spec, "spec_hash": spec_hash(run.spec_config), "task": run.task,
            "target": run.target, "base": run.base, "candidate": candidate, "tree": run.tree,
            "diff_sha256": hashlib.sha256(patch.encode("utf-8")).hexdigest(),
            "files": run.changed_paths,
            "gates": [{**gate.evidence(), "stale": gate.is_stale(run.tree)} for gate in run.gates.values()],
        }
        if run.usage:  # llm agents: what the work cost (cost None: the price map does not know the model)
            fields["usage"] = {key: run.usage.get(key) for key in
                               ("model", "prompt_tokens", "completion_tokens", "cost", "turns")}
        fields.update(extra)
        return self.ledger.append(fields)

    def _close(self, run: Run, state: str, entry: dict[str, Any], **values: Any) -> Run:
        kept = worktrees.remove_worktree(self.repo, Path(run.worktree))
        reason = f": {entry['reason']}" if entry.get("reason") else ""
        message = f"{entry['action']}ed by {entry['actor']}{reason}" + (f"; {kept}" if kept else "")

        def change(stored: Run) -> None:
            stored.state, stored.message, stored.supervisor_pid = state, message, None
            stored.decision = {"action": entry["action"], "actor": entry["actor"], "time": entry["time"],
                               "reason": entry.get("reason"), "ledger_hash": entry["hash"]}
            for key, value in values.items():
                setattr(stored, key, value)
        run = self.store.update(run.id, change)
        self.store.append_events(run.id, [{"type": "state", "state": state, "message": message}])
        return run


def agent_config(agent: Agent) -> dict[str, Any]:
    """The agent as the run keeps it: every setting but secrets (api_key_env is a variable's name)."""
    return dataclasses.asdict(agent)


def spec_hash(spec_config: dict[str, Any] | None) -> str | None:
    return content_hash(spec_config) if spec_config else None


def merge_message(run: Run, actor: str) -> str:
    subject = f"Accept orchestra run {run.id}: {run.spec or 'task'} by {run.agent}"
    return (f"{subject}\n\n{run.task}\n\nOrchestra-Run: {run.id}\nOrchestra-Spec: {run.spec or '-'}\n"
            f"Orchestra-Agent: {run.agent}\nAccepted-By: {actor}\n")


def allowed(action: str, run: Run | None) -> bool:
    """Whether a decision (accept, reject, redirect) or stop can be taken on run in its current state."""
    if run is None:
        return False
    if action == "accept":
        return run.state == "review"
    if action == "stop":
        return run.is_active
    return run.has_worktree


def refusal(action: str, run: Run) -> str:
    """Why an action is not available for a run in its current state."""
    if run.state in ("accepted", "rejected"):
        suffix = " Its worktree is gone; its branch is kept." if action == "shell" else ""
        return f"Run {run.id} was already {run.state}.{suffix}"
    if action == "accept":
        if run.is_active:
            return f"Run {run.id} is still {run.state}: wait for the agent to finish, or stop it."
        return f"Run {run.id} is {run.state}: only a run in review can be accepted. Redirect it to try again."
    return f"Run {run.id} cannot be {action}ed while it is {run.state}."
