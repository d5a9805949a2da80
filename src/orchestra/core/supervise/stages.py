"""A workflow's stages, run by the run's supervisor one after another on the same branch and worktree.

Each stage is its agent's turn (the agent recorded for it at spawn, in the stage's role), its commits authored
by that agent. What follows a turn:

- a plan stage: the plan (PLAN.md, moved out of the worktree before anything is committed; else the agent's
  answer or output) goes to the run's state directory; a plan stage that changed files fails;
- any other stage but the last: the gates run once on its tree (the boundary, the secret scan, the spec's
  checks; not the review, which comes after the last stage), and a tests or docs stage must have changed only
  what its role may change;
- the last stage: the run goes to review as a run without a workflow does (every gate, then the review).

A stage that fails stops the workflow: the run goes to review (its gates show why) with the workflow
"stopped", and a redirect restarts that stage. A stage with `approve` waits in review for the conductor: an
accept approves it (fleet.decisions: the "advance" decision) and the next stage starts.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from typing import TYPE_CHECKING, Any

from orchestra.core.base.files import write_atomic
from orchestra.core.gates.boundary import check_boundary
from orchestra.core.git.diffs import touched_paths
from orchestra.core.git.snapshot import branch_tip
from orchestra.core.runs.run import Run
from orchestra.core.runs.workflow import (PLAN_IN_WORKTREE, current, is_last, label, plan_path, plan_sha256,
                                          position, read_plan, stage_redirect, staged, with_log)
from orchestra.core.score.roles import role_of
from orchestra.core.supervise.agent_process import Outcome

if TYPE_CHECKING:
    from orchestra.core.supervise.supervisor import Supervisor

PLAN_LIMIT = 256 * 1024  # bytes of a plan kept: a plan longer than this is not a plan anyone reads


async def run_stages(sup: Supervisor) -> None:
    """Run stages from the current one until one waits for the conductor, fails, or the last goes to review."""
    while not sup.stop_event.is_set():
        run = sup.store.load(sup.run_id)
        stage = current(run)
        if stage is None:
            return
        start_tip = await asyncio.to_thread(branch_tip, sup.tree)
        started = time.time()
        flow = {**run.workflow, "status": "working", "stage_started": started}
        sup.set_state("working", f"{label(run)}: working", started=run.started or started, finished=None,
                      exit_code=None, workflow=flow)
        number, count = position(run)
        sup.store.append_events(run.id, [{"type": "stage", "index": number, "of": count, "name": stage["name"],
                                          "agent": stage["agent"], "role": stage.get("role")}])
        redirect = stage_redirect(run)
        if redirect:
            sup.events.note(f"redirected: {redirect}")
        view = staged(sup.run, read_plan(sup.store.run_dir(run.id)))
        outcome = await sup.start_agent(redirect, view)
        sup.events.flush()
        if not await finish_stage(sup, outcome, stage, start_tip, started, view):
            return


async def finish_stage(sup: Supervisor, outcome: Outcome, stage: dict[str, Any], start_tip: str,
                       started: float, view: Run) -> bool:
    """Record the stage's end (view: the run as the stage's agent saw it); True when the next stage is to start
    now."""
    run = sup.store.load(sup.run_id)
    prefix = f"{label(run)}: "
    plan = await asyncio.to_thread(take_plan, sup, run) if stage.get("role") == "plan" else None
    # Failed or stopped: the workflow's log says so in the same transition; a redirect restarts the stage.
    ending = lambda state, message: {  # noqa: E731
        "workflow": logged(sup.store.load(sup.run_id), stage, started, state, "failed", message)}
    values = await asyncio.to_thread(sup.record_outcome, outcome, stage["agent"], False, prefix, ending)
    if values is None:
        return False
    run = sup.store.load(sup.run_id)
    problems = await asyncio.to_thread(stage_problems, sup, run, stage, start_tip, values.get("candidate"), plan)
    if not problems and is_last(run) and stage.get("role") != "plan":
        # Gates, then review; a security stage's findings (its agent's answer) join the gates.
        sup.enter_review(values, author=view, workflow=logged(run, stage, started, "done", "done", ""))
        return False
    sup.update(**values)
    if not problems and stage.get("role") != "plan":
        problems = await checked(sup)
    run = sup.store.load(sup.run_id)
    if problems:
        detail = "; ".join(problems)
        sup.set_state("review", f"{prefix}stopped: {detail}. A redirect restarts this stage; reject ends the run.",
                      workflow=logged(run, stage, started, "failed", "stopped", detail))
        return False
    if stage.get("approve"):
        what = "the plan" if plan is not None else "its work"
        sup.set_state("review", f"{prefix}{what} waits for your approval: accept approves it and the next stage "
                                "starts; redirect asks for another attempt",
                      workflow=logged(run, stage, started, "done", "approval", ""))
        return False
    if is_last(run):  # a plan as the last stage: nothing comes after it to hand the plan to
        sup.set_state("review", f"{prefix}the plan is written",
                      workflow=logged(run, stage, started, "done", "done", ""))
        return False
    flow = logged(run, stage, started, "done", "working", "")
    sup.update(workflow={**flow, "at": flow["at"] + 1, "redirects_at": len(run.redirects)})
    return True


def logged(run: Run, stage: dict[str, Any], started: float, outcome: str, status: str, detail: str) -> dict:
    """The run's workflow with the stage's end in its log and its status set."""
    number, _count = position(run)
    flow = with_log(run.workflow or {}, stage=stage["name"], index=number, agent=stage["agent"], started=started,
                    finished=time.time(), outcome=outcome, commit=run.candidate, detail=detail)
    return {**flow, "status": status}


def take_plan(sup: Supervisor, run: Run) -> str | None:
    """Move the plan stage's PLAN.md out of the worktree into the run's state directory (else keep the agent's
    answer or output as the plan); the plan, or None when there is none. Never follows a link: the file is
    the agent's, and may point anywhere."""
    text = read_own_file(sup.worktree / PLAN_IN_WORKTREE)
    if text is None:
        text = str(sup.result.get("result") or "") or stage_output(sup, run)
    text = text.strip()
    if not text:
        return None
    write_atomic(plan_path(sup.store.run_dir(run.id)), text + "\n", mode=0o600)
    flow = sup.store.load(run.id).workflow or {}
    sup.update(workflow={**flow, "plan_written": plan_sha256(text + "\n")})  # an edit by the conductor shows
    sup.events.note(f"the plan is kept for the conductor ({len(text.splitlines())} lines)")
    return text


def read_own_file(path: Any) -> str | None:
    """A regular file's text (at most PLAN_LIMIT bytes), removed once read; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, PLAN_LIMIT)
    finally:
        os.close(fd)
    os.unlink(path)
    return data.decode("utf-8", errors="replace")


def stage_output(sup: Supervisor, run: Run) -> str:
    """What the agent printed during the current stage (after its stage event)."""
    events = sup.store.read_events_tail(run.id, 512 * 1024)[0]
    starts = [i for i, event in enumerate(events) if event.get("type") == "stage"]
    since = events[starts[-1] + 1:] if starts else events
    return "\n".join(str(event.get("text", "")) for event in since if event.get("type") == "output")


def stage_problems(sup: Supervisor, run: Run, stage: dict[str, Any], start_tip: str, tip: str | None,
                   plan: str | None) -> list[str]:
    """What the stage did that its kind forbids: a plan stage without a plan or changing files, a tests or docs
    stage changing what its role may not."""
    tip = tip or start_tip
    changed = touched_paths(sup.store.state_dir, start_tip, tip) if tip != start_tip else []
    if stage.get("role") == "plan":
        problems = [] if plan else [f"no plan was written ({PLAN_IN_WORKTREE} or the agent's answer)"]
        if changed:
            problems.append(f"a plan stage changes no files, and it changed {', '.join(changed[:5])}")
        return problems
    role = role_of(stage.get("config"))
    if role.allow is None or not changed:
        return []
    beyond = check_boundary(changed, (), (), role).violations()
    return beyond[:5]  # "a tests agent may only change tests: src/app.py"


async def checked(sup: Supervisor) -> list[str]:
    """Run the gates once on the stage's tree, without the review; the gates that did not pass."""
    sup.verifier.reviewing = False
    try:
        await sup.verifier.verify_pass()
    finally:
        sup.verifier.reviewing = True
    run = sup.store.load(sup.run_id)
    review = {name for name in run.expected_gates() if name.startswith("review-")}
    failed = [name for name in run.expected_gates() if name not in review
              and (name not in run.gates or run.gates[name].status != "passed" or run.gates[name].tree != run.tree)]
    return [f"gate {name} {run.gates[name].status if name in run.gates else 'did not run'}" for name in failed]
