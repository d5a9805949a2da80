"""Workflows as data: a spec's work as ordered stages, each done by an agent in a role, some approved by a human.

`[[workflows]]` in the score names a workflow and its `[[workflows.stages]]`: `name`, `role` (the role its agent
takes: plan, code, tests, docs, security, infra), `agents` (who does it: the first named; none: the score's
first agent with that role, else the run's own agent taking the role), `approve = true` (a human approves the
stage's work before the next starts) and `on_reject` ("retry": rejecting that work sends the reason back to
the stage as a redirect; "abort": it rejects the run). A spec names its workflow with `workflow = "NAME"`.

Two are built in: `quick`, today's flow (the run's agent implements; gates, review, decide), and `full`:
plan (approved by the conductor before any code is written) → implement → tests → docs, then the gates,
the review and the decision as usual. Review always comes after the last stage, by the spec's reviewers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestra.core.score.locate import BOOL, STRING, STRINGS, ARRAY, KeyPath, Problems, closest, type_name
from orchestra.core.score.model import NAME

STAGE_ROLES = ("plan", "code", "tests", "docs", "security", "infra")
ON_REJECT = ("retry", "abort")
WORKFLOW_FIELDS = {"name": STRING, "stages": ARRAY}
STAGE_FIELDS = {"name": STRING, "role": STRING, "agents": STRINGS, "approve": BOOL, "on_reject": STRING}
MAX_STAGES = 12


@dataclass(frozen=True)
class Stage:
    """One step of a workflow."""

    name: str
    role: str | None = None
    agents: tuple[str, ...] = ()
    approve: bool = False
    on_reject: str = "retry"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "agents": list(self.agents), "approve": self.approve,
                "on_reject": self.on_reject}


@dataclass(frozen=True)
class Workflow:
    """A named, ordered list of stages."""

    name: str
    stages: tuple[Stage, ...]


BUILT_IN = {
    "quick": Workflow("quick", (Stage("implement", role="code"),)),
    "full": Workflow("full", (Stage("plan", role="plan", approve=True), Stage("implement", role="code"),
                              Stage("tests", role="tests"), Stage("docs", role="docs"))),
}


def workflows(p: Problems, raw: Any, agent_names: set[str]) -> dict[str, Workflow]:
    """Validate [[workflows]]; the built-ins plus each valid one, by name."""
    found = dict(BUILT_IN)
    if raw is None:
        return found
    if not isinstance(raw, list):
        p.add(("workflows",), f"expected array of tables ([[workflows]]), got {type_name(raw)}")
        return found
    for i, item in enumerate(raw):
        at: KeyPath = ("workflows", i)
        if not isinstance(item, dict):
            p.add(at, f"expected table, got {type_name(item)}")
            continue
        flow = _workflow(p, at, item, agent_names, found)
        if flow is not None:
            found[flow.name] = flow
    return found


def _workflow(p: Problems, at: KeyPath, raw: dict, agent_names: set[str],
              seen: dict[str, Workflow]) -> Workflow | None:
    v = p.fields(raw, at, WORKFLOW_FIELDS, ("name", "stages"))
    name = v.get("name")
    if name is not None:
        if name in BUILT_IN:
            p.add((*at, "name"), f"{name!r} is a built-in workflow; give yours another name")
        elif not NAME.fullmatch(name):
            p.add((*at, "name"), f"invalid workflow name {name!r}: use lower-case letters, digits, '-' and '_'")
        elif name in seen:
            p.add((*at, "name"), f"duplicate workflow {name!r}")
    stages_raw = v.get("stages", [])
    if "stages" in v and not stages_raw:
        p.add((*at, "stages"), "a workflow needs at least one stage")
    if len(stages_raw) > MAX_STAGES:
        p.add((*at, "stages"), f"at most {MAX_STAGES} stages, got {len(stages_raw)}")
    stages, names = [], set()
    for j, item in enumerate(stages_raw):
        stage = _stage(p, (*at, "stages", j), item, agent_names, names)
        if stage is not None:
            stages.append(stage)
    ok = name is not None and name not in BUILT_IN and name not in seen and len(stages) == len(stages_raw) > 0
    return Workflow(name, tuple(stages)) if ok and NAME.fullmatch(name) else None


def _stage(p: Problems, at: KeyPath, raw: Any, agent_names: set[str], names: set[str]) -> Stage | None:
    if not isinstance(raw, dict):
        p.add(at, f"expected table, got {type_name(raw)}")
        return None
    v = p.fields(raw, at, STAGE_FIELDS, ("name",))
    broken = "name" not in v
    name = v.get("name")
    if name is not None:
        if not NAME.fullmatch(name):
            p.add((*at, "name"), f"invalid stage name {name!r}: use lower-case letters, digits, '-' and '_'")
            broken = True
        elif name in names:
            p.add((*at, "name"), f"duplicate stage {name!r} in this workflow")
            broken = True
        names.add(name)
    role = v.get("role")
    if role == "review":
        p.add((*at, "role"), "review comes after the last stage, by the spec's reviewers ([review] or a spec's "
                             "`review`): it is not a stage")
        broken = True
    elif role is not None and role not in STAGE_ROLES:
        p.add((*at, "role"), f"invalid role {role!r}: expected one of {', '.join(STAGE_ROLES)}",
              closest(role, STAGE_ROLES))
        broken = True
    for k, agent in enumerate(v.get("agents", ())):
        if agent not in agent_names:
            p.add((*at, "agents", k), f"unknown agent {agent!r}", closest(agent, agent_names))
            broken = True
    on_reject = v.get("on_reject", "retry")
    if on_reject not in ON_REJECT:
        p.add((*at, "on_reject"), f"invalid on_reject {on_reject!r}: expected \"retry\" (the reason goes back to "
                                  "the stage as a redirect) or \"abort\" (the run is rejected)",
              closest(on_reject, ON_REJECT))
        broken = True
    if broken:
        return None
    return Stage(name, role, tuple(v.get("agents", ())), bool(v.get("approve", False)), on_reject)


def spec_workflow(p: Problems, at: KeyPath, name: Any, known: dict[str, Workflow]) -> None:
    """Report a spec's `workflow` that names no workflow."""
    if isinstance(name, str) and name not in known:
        p.add((*at, "workflow"), f"unknown workflow {name!r} (built in: quick, full; or define [[workflows]])",
              closest(name, known))
