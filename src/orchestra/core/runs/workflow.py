"""A run's workflow as its record keeps it: the stages with the agent each was given at spawn, where it is now,
a log of the stages, and the plan the conductor approved.

Run.workflow (None for a run without one, which is today's single-stage flow):

    {"name": "full", "at": 1, "status": "working" | "approval" | "stopped" | "failed" | "done",
     "stages": [{"name", "role", "agent", "config" (the agent's settings, its role the stage's), "approve",
                 "on_reject"}],
     "redirects_at": how many redirects the run had when the current stage started (later ones are its own),
     "log": [{"stage", "index", "agent", "started", "finished", "outcome", "commit", "detail"}],
     "plan": {"sha256", "approved_by", "ledger_hash", "edited"} once approved}

The plan itself is a file in the run's state directory (plan.md), never in the candidate.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from orchestra.core.runs.run import Run

PLAN_FILE = "plan.md"          # in the run's state directory
PLAN_IN_WORKTREE = "PLAN.md"   # where a plan stage's agent writes it; moved out before anything is committed
STATUSES = ("working", "approval", "stopped", "failed", "done")


def current(run: Run) -> dict[str, Any] | None:
    """The stage the run is at (None without a workflow)."""
    flow = run.workflow
    if not flow:
        return None
    stages = flow.get("stages") or []
    at = flow.get("at", 0)
    return stages[at] if 0 <= at < len(stages) else None


def position(run: Run) -> tuple[int, int]:
    """(the current stage's number from 1, how many stages)."""
    flow = run.workflow or {}
    return flow.get("at", 0) + 1, len(flow.get("stages") or [])


def is_last(run: Run) -> bool:
    number, count = position(run)
    return number >= count


def awaiting_approval(run: Run) -> bool:
    """Whether the run waits for the conductor to approve its current stage's work."""
    return bool(run.workflow) and run.state == "review" and run.workflow.get("status") == "approval"


def paused(run: Run) -> bool:
    """Whether the workflow waits between stages (for an approval, or a redirect after a failed stage): its
    supervisor does not watch the worktree or run the review then."""
    return bool(run.workflow) and run.workflow.get("status") in ("approval", "stopped")


def unfinished(run: Run) -> str | None:
    """Why the run's workflow keeps it from being accepted (None: no workflow, or at its last stage's end)."""
    stage = current(run)
    if stage is None:
        return None
    number, count = position(run)
    status = (run.workflow or {}).get("status")
    if number == count and status not in ("approval", "stopped", "failed"):
        return None
    waiting = {"approval": "waits for your approval", "stopped": "stopped", "failed": "failed"}.get(status, "runs")
    return f"the workflow is at stage {number}/{count} ({stage['name']}), which {waiting}: it has not finished"


def label(run: Run) -> str:
    """"2/4 tests: tester" — the stage and its agent, for panes and lists ("" without a workflow)."""
    stage = current(run)
    if stage is None:
        return ""
    number, count = position(run)
    return f"{number}/{count} {stage['name']}: {stage['agent']}"


def stage_redirect(run: Run) -> str | None:
    """The latest redirect given since the current stage started (earlier ones were for earlier stages)."""
    since = (run.workflow or {}).get("redirects_at", 0)
    return run.redirects[-1] if len(run.redirects) > since else None


def plan_path(run_dir: Path) -> Path:
    return run_dir / PLAN_FILE


def read_plan(run_dir: Path) -> str | None:
    """The run's plan, if a plan stage wrote one."""
    try:
        return plan_path(run_dir).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def plan_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stage_task(run: Run, plan: str | None) -> str:
    """What the current stage's agent is asked: the run's task, the approved plan for a stage after it, and for
    a plan stage where to write the plan."""
    stage = current(run) or {}
    parts = [run.task]
    if stage.get("role") == "plan":
        parts.append(f"Write your plan as Markdown to {PLAN_IN_WORKTREE} at the repository's root, and change no "
                     "other file: the conductor reads and approves the plan before any code is written.")
    elif plan:
        parts.append("The approved plan (follow it; say in your summary where you had to depart from it):\n\n"
                     + plan.strip())
    number, count = position(run)
    parts.append(f"This is stage {number} of {count} ({stage.get('name')}) of the workflow "
                 f"{(run.workflow or {}).get('name')}; the earlier stages' work is in the worktree already.")
    return "\n\n".join(part for part in parts if part)


def staged(run: Run, plan: str | None) -> Run:
    """The run as its current stage's agent sees it: that agent, its settings (the stage's role), the stage's task."""
    stage = current(run)
    if stage is None:
        return run
    return dataclasses.replace(run, agent=stage["agent"], agent_config=stage["config"], task=stage_task(run, plan))


def with_log(flow: dict[str, Any], **entry: Any) -> dict[str, Any]:
    """flow with entry appended to its log (a copy: records are replaced, never edited in place)."""
    return {**flow, "log": [*(flow.get("log") or []), entry]}


def summary(run: Run) -> dict[str, Any] | None:
    """The workflow as `orchestra runs --json` shows it."""
    flow = run.workflow
    stage = current(run)
    if not flow or stage is None:
        return None
    number, count = position(run)
    return {"name": flow.get("name"), "status": flow.get("status"),
            "stage": {"index": number, "of": count, "name": stage["name"], "agent": stage["agent"],
                      "role": stage.get("role"), "approve": stage.get("approve", False)},
            "stages": [{"name": s["name"], "agent": s["agent"], "role": s.get("role")} for s in flow["stages"]],
            "plan": flow.get("plan"), "log": flow.get("log") or []}
