"""`orchestra plan RUN [--edit]`: the plan a workflow's plan stage wrote, shown or edited before it is approved."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from orchestra.core.base.errors import ActionRefused, OrchestraError

if TYPE_CHECKING:
    import argparse

    from orchestra.core.fleet import Fleet


def cmd_plan(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.runs.lifecycle import allowed, refusal
    from orchestra.core.runs.workflow import label, plan_path, read_plan
    run = fleet.get(args.run)
    path = plan_path(fleet.store.run_dir(run.id))
    if args.edit:
        if not allowed("plan", run):
            raise ActionRefused(refusal("plan", run))
        argv = [*(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi").split(), str(path)]
        try:
            status = subprocess.call(argv)
        except OSError as error:
            raise OrchestraError(f"could not start the editor {argv[0]}: {error.strerror or error}") from None
        if status:
            raise OrchestraError(f"the editor {argv[0]} exited with status {status}; the plan is as it left it")
        print(f"Edited {run.id}'s plan ({path}); `orchestra accept {run.id}` approves it.")
        return 0
    plan = read_plan(fleet.store.run_dir(run.id))
    if plan is None:
        stage = label(run) or "no workflow"
        raise OrchestraError(f"Run {run.id} has no plan ({stage}).")
    print(plan, end="" if plan.endswith("\n") else "\n")
    return 0
