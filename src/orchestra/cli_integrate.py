"""`orchestra integrate SPEC_OR_GROUP`: the parts of a spec merged onto the target as one integration candidate."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from orchestra.core.base.signals import interrupts_deferred

if TYPE_CHECKING:
    import argparse

    from orchestra.core.fleet import Fleet


def cmd_integrate(fleet: Fleet, args: argparse.Namespace) -> int:
    """Print the integration's run id (or JSON); the conflicts, or the parts not in review, exit 1."""
    from orchestra.core.fleet.integration import PartsConflict, PartsNotInReview, integrate, integrate_when_ready
    if args.when_ready:  # asked by a part's supervisor: say what happened, in its integrate.log
        try:
            with interrupts_deferred():
                built, said = integrate_when_ready(fleet, args.name)
        except PartsConflict as refused:
            print(str(refused))
            return 0
        print(f"{built.id} built" if built else said)
        return 0
    try:
        with interrupts_deferred():
            run = integrate(fleet, args.name, trust=args.trust)
    except (PartsConflict, PartsNotInReview) as refused:
        if args.json:
            print(json.dumps(refused.to_json(), indent=2))
        print(str(refused), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"spec": run.spec, "group": run.group, "built": run.id, "branch": run.branch,
                          "candidate": run.candidate, **(run.integration or {})}, indent=2))
    else:
        print(run.id)
    return 0
