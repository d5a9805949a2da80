"""The score's parts as frozen dataclasses: agents, specs and their checks, and the whole score."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orchestra.core.base.canonical import content_hash

KINDS = ("shell", "cli", "llm")
PRESETS = ("claude", "codex", "aider", "gemini", "opencode")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
HOST_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # a [[hosts]] name of the user's settings (core.hosts)
SANDBOX_MODES = ("auto", "required", "off")
UPDATE_MODES = ("rebase", "merge")  # [orchestra] update: how `u` brings a run up to date with its target
ROLES = ("code", "tests", "docs", "security", "infra", "review", "plan")
INDEPENDENCE = ("provider", "model", "none")
BETTER = ("lower", "higher")
NETWORK = ("on", "off")
# Graduated autonomy: "manual", a human decides every run; "auto", a ready run is accepted by policy. Granted by
# a named human (orchestra autonomy grant), never by a file: a spec's max_autonomy can only lower the ceiling.
AUTONOMY = ("manual", "auto")
PROMOTE_AFTER = 5  # [autonomy] promote_after: ready runs accepted in a row before promotion is suggested
# Ignored files that may be deleted with a run's worktree: dependency and build caches, aider's history.
DEFAULT_DISPOSABLE = (
    "node_modules/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/",
    ".ruff_cache/", ".hypothesis/", ".tox/", ".nox/", ".gradle/", ".next/", ".cache/", "*.egg-info/", ".coverage",
    ".DS_Store", ".aider*",
)


@dataclass(frozen=True)
class Check:
    """One verify command; `junit`, `sarif` and `coverage` are report paths the command writes, relative to
    the worktree. With `sarif`, the gate is the report's errors in changed lines; with `coverage`, the
    thresholds (percentages) below; `benchmark` compares the number it prints with the target's; `prove`
    runs the tests the candidate adds or changes against the base tree too (they must fail there)."""

    name: str
    command: str
    junit: str | None = None
    timeout: float = 600.0
    sarif: str | None = None
    coverage: str | None = None
    min_coverage: float | None = None          # total, percent
    min_changed_coverage: float | None = None  # of the lines the candidate adds or changes, percent
    max_coverage_drop: float | None = None     # percentage points below the target's total
    benchmark: bool = False
    tolerance: float = 5.0                     # percent worse than the target's that still passes
    better: str = "lower"                      # lower (a time) or higher (a rate) is better
    prove: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields; the evidence fields only when set (old hashes stay)."""
        data: dict[str, Any] = {"name": self.name, "command": self.command, "junit": self.junit,
                                "timeout": self.timeout}
        for key, default in _CHECK_EXTRAS.items():
            value = getattr(self, key)
            if value != default:
                data[key] = value
        return data


_CHECK_EXTRAS: dict[str, Any] = {"sarif": None, "coverage": None, "min_coverage": None,
                                 "min_changed_coverage": None, "max_coverage_drop": None, "benchmark": False,
                                 "tolerance": 5.0, "better": "lower", "prove": False}


@dataclass(frozen=True)
class Agent:
    """One agent of the fleet; `timeout` is the seconds it may work before it is stopped."""

    name: str
    kind: str
    command: str | None = None
    preset: str | None = None
    model: str | None = None
    role: str | None = None
    timeout: float = 3600.0
    api_base: str | None = None
    api_key_env: str | None = None
    # llm agents: the budget that ends a run (None: no limit but the timeout) and one request's timeout.
    max_turns: int = 50
    max_tokens: int | None = None
    max_cost: float | None = None
    request_timeout: float = 120.0
    # "on"/"off"; None: on for shell and cli agents (a CLI calls its model itself), off for llm agents
    # (the llm host calls the model, outside the sandbox).
    network: str | None = None
    env: tuple[str, ...] = ()  # names of variables of the user's environment the agent may see
    # "oneshot": one unattended turn; "interactive": the CLI's own session in a pseudo-terminal the conductor
    # can attach to (orchestra attach, t), its turn ending when the CLI exits.
    session: str = "oneshot"
    # The host its runs go to ([[hosts]] in the user's settings; None: wherever a slot is free).
    host: str | None = None

    @property
    def network_on(self) -> bool:
        return self.network == "on" if self.network is not None else self.kind != "llm"


@dataclass(frozen=True)
class Part:
    """One part of a spec (`[[specs.parts]]`): run in parallel with the others, held to its own boundary, and
    merged with them into an integration candidate that the spec's own verify checks."""

    id: str
    intent: str
    allow: tuple[str, ...] = ()   # () : the spec's allow
    deny: tuple[str, ...] = ()    # on top of the spec's deny
    agents: tuple[str, ...] = ()  # () : the spec's agents
    verify: tuple[Check, ...] = ()  # the part's own checks (the spec's verify runs on the integration)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return {"id": self.id, "intent": self.intent, "allow": list(self.allow), "deny": list(self.deny),
                "agents": list(self.agents), "verify": [check.to_dict() for check in self.verify]}


@dataclass(frozen=True)
class Spec:
    """One piece of work: what to do, which paths may change, how to verify it, who does it."""

    id: str
    intent: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    verify: tuple[Check, ...] = ()
    agents: tuple[str, ...] = ()
    env: tuple[str, ...] = ()    # variables of the user's environment its agents and gates may see
    setup: tuple[str, ...] = ()  # commands run in a new worktree before the agent (after [orchestra] setup)
    review: tuple[str, ...] = ()  # reviewer agents (role "review"); () : [review] agents, if any
    max_autonomy: str = "auto"  # the most autonomy a grant can give this spec's runs ("manual": none)
    workflow: str | None = None  # its workflow's name (score.workflows); None: the quick flow
    draft: bool = False  # drafted by an agent and not yet read: spawn refuses it until `draft = true` goes
    # A spec of its own file: that file relative to the score's directory ("specs/fix-mean.toml") and the
    # sha256 of its bytes when it was read. None for a spec of orchestra.toml's [[specs]].
    source: str | None = None
    source_sha256: str | None = None
    parts: tuple[Part, ...] = ()  # [[specs.parts]]: run in parallel, integrated (fleet.integration)
    part: str | None = None  # a part's run holds the part as a spec (part_spec): which part it is

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields, checks as dicts and tuples as lists.

        A file's spec carries its file and the file's sha256, so its hash names that exact version of the
        file, comments (its stable paths, its rollback plan) included."""
        data = {
            "id": self.id, "intent": self.intent, "allow": list(self.allow),
            "deny": list(self.deny), "verify": [check.to_dict() for check in self.verify],
            "agents": list(self.agents), "env": list(self.env), "setup": list(self.setup),
        }
        if self.review:
            data["review"] = list(self.review)
        if self.max_autonomy != "auto":  # only when set: the hashes of specs from before stay
            data["max_autonomy"] = self.max_autonomy
        if self.workflow is not None:
            data["workflow"] = self.workflow
        if self.draft:  # only when set: the hashes of specs without it stay
            data["draft"] = True
        if self.source is not None:
            data["source"], data["source_sha256"] = self.source, self.source_sha256
        if self.parts:  # only when set, like the keys above: the hashes of specs without parts stay
            data["parts"] = [part.to_dict() for part in self.parts]
        if self.part is not None:
            data["part"] = self.part
        return data

    def part_spec(self, part_id: str) -> Spec:
        """The part called part_id as a spec of its own, as its run is held to it: its intent and checks, its
        allow (the spec's when it gives none), the spec's deny and its own, its agents (else the spec's); the
        spec's id, env, setup, reviewers, autonomy ceiling, workflow and file. KeyError if there is no such part."""
        part = next((part for part in self.parts if part.id == part_id), None)
        if part is None:
            raise KeyError(part_id)
        return replace(self, intent=part.intent, allow=part.allow or self.allow, deny=(*self.deny, *part.deny),
                       verify=part.verify, agents=part.agents or self.agents, parts=(), part=part.id)

    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON of to_dict() (sorted keys, compact separators)."""
        return content_hash(self.to_dict())


@dataclass(frozen=True)
class ApprovalRule:
    """[[approvals]]: a run that changes a file matching paths merges only once `require` distinct humans
    accepted the same candidate; approvers (names or emails), or the repository's CODEOWNERS for the files
    it matched, say who may; nobody named: anyone. An accept by policy never counts."""

    paths: tuple[str, ...]
    require: int = 1
    approvers: tuple[str, ...] = ()
    codeowners: bool = False


@dataclass(frozen=True)
class ReviewPolicy:
    """[review]: who reviews every spec that names no reviewers, what blocks, how independent they must be.

    `budget` is the tokens of diff one reviewer request may carry; a larger diff is reviewed file by file."""

    agents: tuple[str, ...] = ()
    block_on: str = "P1"
    independence: str = "provider"
    budget: int = 24_000
    retries: int = 2  # extra attempts after a malformed answer, before the gate fails closed


@dataclass(frozen=True)
class Score:
    """A whole orchestra.toml; `target` None means the caller should use the current branch.

    `disposable` holds globs of ignored files that may be deleted along with a run's worktree.
    """

    path: Path | None = None
    target: str | None = None
    agents: tuple[Agent, ...] = ()
    specs: tuple[Spec, ...] = ()
    keymap: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    theme: str | None = None
    disposable: tuple[str, ...] = DEFAULT_DISPOSABLE
    sandbox: str = "auto"                # auto | required | off
    sandbox_read: tuple[str, ...] = ()   # [sandbox] read: paths agents may read (absolute or ~/...)
    setup: tuple[str, ...] = ()          # [orchestra] setup: commands for every new worktree
    update: str = "rebase"               # [orchestra] update: rebase | merge (see UPDATE_MODES)
    review: ReviewPolicy = ReviewPolicy()
    promote_after: int = PROMOTE_AFTER    # [autonomy] promote_after
    approvals: tuple[ApprovalRule, ...] = ()  # [[approvals]]
    # [[workflows]] by name, the built-in ones (quick, full) included (score.workflows.Workflow)
    workflows: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def agent(self, name: str) -> Agent:
        """The agent called name; KeyError if there is none."""
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    def spec(self, spec_id: str) -> Spec:
        """The spec with this id; KeyError if there is none."""
        for spec in self.specs:
            if spec.id == spec_id:
                return spec
        raise KeyError(spec_id)

    def workflow(self, name: str) -> Any:
        """The workflow called name (score.workflows.Workflow): the score's own, or a built-in one."""
        from orchestra.core.score.workflows import BUILT_IN
        found = self.workflows.get(name) or BUILT_IN.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def agents_for(self, spec: Spec) -> tuple[Agent, ...]:
        """The agents spec names, in its order, or every agent but the reviewers when it names none."""
        if spec.agents:
            return tuple(self.agent(name) for name in spec.agents)
        return tuple(agent for agent in self.agents if agent.role != "review")

    def reviewers_for(self, spec: Spec | None) -> tuple[Agent, ...]:
        """Who reviews a run of spec: the spec's `review`, else [review] agents (a task: [review] agents)."""
        names = spec.review if spec is not None and spec.review else self.review.agents
        return tuple(self.agent(name) for name in names)


