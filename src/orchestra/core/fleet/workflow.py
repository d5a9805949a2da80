"""A run's workflow at spawn (which agent does each stage), and what the conductor's decisions mean for it.

Who does a stage: the first agent the stage names; a stage without agents whose role is `code` (or none) is
the run's own agent (so best-of-N compares implementers); another role, the score's first agent with that
role, else the run's own agent taking the role (a cli or shell agent is told the role in its prompt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.core.runs.workflow import current, plan_path, plan_sha256, read_plan

if TYPE_CHECKING:
    from pathlib import Path

    from orchestra.core.runs.run import Run
    from orchestra.core.score.model import Agent, Score, Spec
    from orchestra.core.score.workflows import Stage


def workflow_for(score: Score, spec: Spec | None, agent: Agent) -> dict[str, Any] | None:
    """The run's workflow record for spec's workflow with agent as the run's own (None: the quick flow)."""
    from orchestra.core.fleet.fleet import agent_config
    flow = score.workflow(spec.workflow) if spec is not None and spec.workflow else None
    if flow is None or flow.name == "quick":
        return None
    stages = []
    for stage in flow.stages:
        who = stage_agent(score, stage, agent)
        config = agent_config(who)
        if stage.role is not None:
            config["role"] = stage.role
        stages.append({"name": stage.name, "role": stage.role, "agent": who.name, "config": config,
                       "approve": stage.approve, "on_reject": stage.on_reject})
    return {"name": flow.name, "at": 0, "status": "working", "stages": stages, "redirects_at": 0, "log": [],
            "plan": None}


def stage_agent(score: Score, stage: Stage, own: Agent) -> Agent:
    """Who does stage in a run of own (see the module's docstring)."""
    if stage.agents:
        return score.agent(stage.agents[0])
    if stage.role in (None, "code"):
        return own
    return next((a for a in score.agents if a.role == stage.role), own)


def approval_fields(run: Run, run_dir: Path) -> dict[str, Any]:
    """What approving the run's current stage records: the stage, and for a plan the plan's sha256 and text
    length (the plan itself stays in the run's state directory)."""
    stage = current(run) or {}
    number = (run.workflow or {}).get("at", 0) + 1
    fields: dict[str, Any] = {"stage": stage.get("name"), "stage_index": number, "workflow": run.workflow["name"]}
    plan = read_plan(run_dir) if stage.get("role") == "plan" else None
    if plan is not None:
        fields.update(plan_sha256=plan_sha256(plan), plan_file=str(plan_path(run_dir)),
                      plan_edited=plan_edited(run, plan))
    return fields


def plan_edited(run: Run, plan: str) -> bool:
    """Whether the conductor changed the plan after its agent wrote it (the log keeps what was written)."""
    written = (run.workflow or {}).get("plan_written")
    return bool(written) and written != plan_sha256(plan)


def advanced(run: Run, entry: dict[str, Any]) -> dict[str, Any]:
    """The workflow after an approval of its current stage: the next stage, its redirects its own."""
    flow = dict(run.workflow or {})
    if entry.get("plan_sha256"):
        flow["plan"] = {"sha256": entry["plan_sha256"], "approved_by": entry["actor"], "ledger_hash": entry["hash"],
                        "edited": bool(entry.get("plan_edited"))}
    log = [*(flow.get("log") or []), {"stage": entry.get("stage"), "index": entry.get("stage_index"),
                                      "approved_by": entry["actor"], "time": entry["time"], "outcome": "approved"}]
    return {**flow, "at": flow.get("at", 0) + 1, "status": "working", "redirects_at": len(run.redirects), "log": log}


def rejected_stage_instruction(run: Run, reason: str) -> str:
    """What a stage whose work the conductor rejected (on_reject "retry") is told."""
    stage = (current(run) or {}).get("name", "stage")
    because = f": {reason.strip()}" if reason.strip() else " (no reason was given)"
    return f"The conductor rejected the {stage} stage's work{because}. Do this stage again, taking that into account."
