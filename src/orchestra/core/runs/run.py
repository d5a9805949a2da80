"""The run record: one agent working on one spec or task in one worktree."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from orchestra.core.base.findings import counts, digest, findings_of
from orchestra.core.score.roles import role_check_names

# "interrupted": its supervisor vanished (killed, or the machine restarted) while the agent worked.
STATES = ("queued", "working", "waiting", "review", "accepted", "rejected", "failed", "stopped", "interrupted")
ACTIVE_STATES = frozenset({"queued", "working", "waiting"})  # "waiting": the agent asks for input
DECIDED_STATES = frozenset({"accepted", "rejected"})
DAMAGED_SHOWN_AS = "failed"
SECRETS_GATE = "secrets"  # the secret scan of every candidate's diff
# What the ledger records of a review gate's reviewer.
REVIEWER_KEYS = ("agent", "model", "provider", "author_provider", "independence", "same_provider", "block_on",
                 "prompt_tokens", "completion_tokens", "cost", "attempts", "sandboxed")  # the state a run whose record cannot be read is shown in (never written)


def review_gate_name(agent: str) -> str:
    """The gate of one reviewer's verdict (a check may not be called review-…: the score refuses it)."""
    return f"review-{agent}"


@dataclass
class Gate:
    """One verification result, bound to the tree it ran on."""

    name: str
    # "command", "boundary", "secrets", "review", "sarif", "coverage", "benchmark", "prove" (gates.evidence), "findings"
    # (a security agent's answer, see score.roles)
    kind: str = "command"
    status: str = "pending"        # pending | running | passed | failed | error
    tree: str | None = None
    summary: str = ""
    passed: int | None = None
    failed: int | None = None
    failures: list[str] = field(default_factory=list)
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    output_tail: list[str] = field(default_factory=list)
    # What casts doubt on the result though it passed (e.g. Python code imported from outside the worktree).
    warnings: list[str] = field(default_factory=list)
    # What the gate says about lines of the candidate (base.findings.Finding.to_json()): review, SARIF and
    # secret-scan findings.
    findings: list[dict[str, Any]] = field(default_factory=list)
    verdict: str | None = None  # review gates: "approved" or "changes requested", computed by orchestra
    # Kind-specific facts: a reviewer's {agent, model, provider, independence, same_provider, tokens, cost,
    # explanation}; a coverage gate's percentages; a benchmark's numbers; a proving check's base result.
    details: dict[str, Any] = field(default_factory=dict)

    def is_stale(self, tree: str | None) -> bool:
        """Whether this result was produced on a tree other than the given one."""
        return self.tree is not None and tree is not None and self.tree != tree

    def evidence(self) -> dict[str, Any]:
        """The fields the ledger records for this gate."""
        record = {"name": self.name, "kind": self.kind, "status": self.status, "tree": self.tree,
                  "summary": self.summary, "passed": self.passed, "failed": self.failed}
        if self.verdict is not None:
            record["verdict"] = self.verdict
        if self.kind == "review" and self.details:  # who reviewed, how independently, at what cost
            record["reviewer"] = {key: self.details.get(key) for key in REVIEWER_KEYS}
        if self.findings:
            found = findings_of(self.findings)
            record["findings"] = {"count": len(found), "by_priority": counts(found), "sha256": digest(found)}
        return record


@dataclass
class Run:
    """A run's whole persisted state; the event log holds its history and output."""

    id: str
    agent: str
    spec: str | None
    task: str
    branch: str
    worktree: str
    base: str
    target: str
    agent_config: dict[str, Any]
    spec_config: dict[str, Any] | None
    created: float = field(default_factory=time.time)
    state: str = "queued"
    message: str = ""
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    candidate: str | None = None
    tree: str | None = None
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    changed_paths: list[str] = field(default_factory=list)
    gates: dict[str, Gate] = field(default_factory=dict)
    redirects: list[str] = field(default_factory=list)
    # Each redirect as data, in order: {"message", "findings": [finding JSON], "comments": [finding JSON],
    # "actor", "time"}; the next attempt's prompt lists them.
    feedback: list[dict[str, Any]] = field(default_factory=list)
    # The conductor's own comments on lines of the diff, not yet sent (finding JSON, source "comment").
    comments: list[dict[str, Any]] = field(default_factory=list)
    # The reviewers recorded at spawn: {"agents": [agent config], "block_on", "independence",
    # "author_provider"}; None: nobody reviews this run.
    review_config: dict[str, Any] | None = None
    supervisor_pid: int | None = None
    agent_pgid: int | None = None  # the agent's pid, which leads its process group and session
    # When the agent started (field 22 of /proc/<pid>/stat, clock ticks after boot): with agent_pgid, it tells
    # the agent from a process that reused its pid.
    agent_start: int | None = None
    decision: dict[str, Any] | None = None
    merge_commit: str | None = None
    # llm agents: {"model", "prompt_tokens", "completion_tokens", "cost" (USD, None when unknown), "turns"}
    usage: dict[str, Any] | None = None
    # cli agents: what their output says they are doing, {"state": working|waiting|unknown, "reason"}
    activity: dict[str, Any] | None = None
    # The worktree's administrative directory in the common git dir (recorded at spawn): orchestra's git
    # calls go through it, never through the worktree's own .git file.
    gitdir: str | None = None
    merge_base: str | None = None  # what the candidate is measured (and reviewed, and hashed) against
    review_since: float | None = None  # when the run last entered review (the conductor's time starts)
    # A worktree a decision did not remove because something in it would have been lost:
    # {"path", "reason", "paths"}.
    kept: dict[str, Any] | None = None
    # An accepted run whose merge was undone on its target: who, when, why, the revert commit, its entry.
    reverted: dict[str, Any] | None = None
    # What the agent did to HEAD or its branch, and the refs that keep its commits: [{"what", "ref"?, "commit"?}]
    escapes: list[dict[str, str]] = field(default_factory=list)
    damaged: bool = False  # the record on disk could not be read; this one was pieced together
    # The score's sandbox settings when the run was spawned ({"mode": auto|required|off, "read": [...]}),
    # and how its processes were last started ({"sandboxed", "network", "why_not"}).
    sandbox_config: dict[str, Any] | None = None
    sandbox: dict[str, Any] | None = None
    # The setup commands recorded (and allowed) at spawn: [orchestra] setup, then the spec's.
    setup: list[str] = field(default_factory=list)
    port: int | None = None  # the first of the run's block of ten ports (ORCHESTRA_PORT)
    # How far the target has moved on since the run's base: {"commits", "target": the target's commit it was
    # counted against, "base"} (fleet.update.refresh_behind); None until counted.
    behind: dict[str, Any] | None = None
    # The runs started together by one spawn share a group (the id of its first run); None for older records.
    group: str | None = None
    # Who started the run (the actor at spawn; None for older records): approval rules do not let them be
    # its only approver.
    started_by: str | None = None
    # Human accepts recorded as approvals under [[approvals]]: [{"actor", "candidate", "time", "ledger_hash"}];
    # only those of the current candidate count (fleet.approvals).
    approvals: list[dict[str, Any]] = field(default_factory=list)
    # An accept by policy whose merge made a tree its gates never saw (the target had moved on): the spec's
    # verify checks run on the merge commit (the supervisor's "target" mode), each as Gate.evidence();
    # one that fails demotes the pair (fleet.autopilot). {"merge_commit", "tree", "gates": [...], "done"}.
    target_check: dict[str, Any] | None = None
    # The spec's workflow, its stages, where the run is and a log of them (runs.workflow); None: one stage, the
    # run's own agent (the quick flow).
    workflow: dict[str, Any] | None = None
    # The run of one part of a spec (score.Part): {"spec": the spec's id, "part": the part's id}; None otherwise.
    part_of: dict[str, str] | None = None
    # An integration candidate, the parts' candidates merged onto the target (fleet.integration): {"parts":
    # [{"part", "run", "agent", "candidate", "tree"}], "replaces": [the open integrations it replaced]}.
    integration: dict[str, Any] | None = None
    # The host the run works on ([[hosts]] of the user's settings); None: this machine. A remote run's worktree,
    # agent and gates are there; its record and events here are a replica its relay keeps (supervise.relay).
    host: str | None = None
    # A run waiting for a free slot: {"host": the host it must go to or None, "since"}; None once placed.
    slot_wait: dict[str, Any] | None = None
    # A remote run's places on its host: {"path": orchestra's directory there, "repo": the mirror's key,
    # "worktree": the worktree there}.
    remote: dict[str, Any] | None = None

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_remote(self) -> bool:
        return self.host is not None

    @property
    def has_worktree(self) -> bool:
        """Whether the run still has a worktree: undecided, or kept by its decision."""
        return self.state not in DECIDED_STATES or self.kept is not None

    def expected_gates(self) -> list[str]:
        """The gates a run in review should have: the boundary, the secret scan, each verify command of its
        spec, the gates its agent's role adds for what it changed, then each reviewer's verdict."""
        checks = [check.get("name") for check in (self.spec_config or {}).get("verify", []) if isinstance(check, dict)]
        return ["boundary", SECRETS_GATE, *(name for name in checks if isinstance(name, str)),
                *role_check_names(self.agent_config, self.spec_config, self.changed_paths),
                *(review_gate_name(agent.get("name", "")) for agent in self.reviewers())]

    def declared_env(self) -> list[str]:
        """The variables of the conductor's environment the run's agent and spec declare (their `env`)."""
        names = (*self.agent_config.get("env", ()), *(self.spec_config or {}).get("env", ()))
        return [name for name in names if isinstance(name, str)]

    def reviewers(self) -> list[dict[str, Any]]:
        """The agent configs of the run's reviewers, as recorded at spawn."""
        agents = (self.review_config or {}).get("agents") or []
        return [agent for agent in agents if isinstance(agent, dict) and isinstance(agent.get("name"), str)]

    def elapsed(self, now: float) -> float:
        """Seconds the agent has worked (up to now when it still works)."""
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None and not self.is_active else now
        return max(0.0, end - self.started)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("damaged")  # a property of what was read, never written
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        values = {k: v for k, v in data.items() if k in _STORED}
        values["gates"] = {name: Gate(**g) for name, g in (data.get("gates") or {}).items()}
        return cls(**values)

    def summary_json(self) -> dict[str, Any]:
        """The public shape printed by `orchestra runs --json`."""
        from orchestra.core.runs.workflow import summary as workflow_summary
        return {
            "id": self.id, "agent": self.agent, "spec": self.spec, "task": self.task,
            "state": self.state, "branch": self.branch, "worktree": self.worktree,
            "base": self.base, "target": self.target, "candidate": self.candidate,
            "message": self.message, "created": self.created, "started": self.started,
            "finished": self.finished, "exit_code": self.exit_code,
            "diff": {"files": self.files_changed, "added": self.lines_added, "removed": self.lines_removed},
            "gates": [{**g.evidence(), "stale": g.is_stale(self.tree), "warnings": g.warnings}
                      for g in self.gates.values()],
            "merge_commit": self.merge_commit, "usage": self.usage, "activity": self.activity,
            "merge_base": self.merge_base, "kept_worktree": self.kept, "escapes": self.escapes,
            "damaged": self.damaged, "sandboxed": (self.sandbox or {}).get("sandboxed"), "sandbox": self.sandbox,
            "port": self.port, "group": self.group, "reverted": self.reverted,
            # Who decided (an accept by policy: actor "policy" and granted_by), and approvals under approval rules.
            "decision": self.decision, "started_by": self.started_by, "approvals": self.approvals,
            "target_check": self.target_check, "workflow": workflow_summary(self),
            "part_of": self.part_of, "integration": self.integration,
            # Where it works: "local", or a host of the settings' [[hosts]] (its worktree path is there).
            "host": self.host or "local", "slot_wait": self.slot_wait,
        }


def group_of(run: Run) -> str:
    """The run's group: the spawn that started it (a record from before groups is its own)."""
    return run.group or run.id


_STORED = frozenset(f.name for f in fields(Run)) - {"damaged"}  # a record's keys that Run.from_json reads
