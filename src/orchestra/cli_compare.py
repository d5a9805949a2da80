"""`orchestra compare GROUP`: best-of-N candidates side by side, ranked on evidence, and the group decision."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from orchestra.core.base.signals import interrupts_deferred
from orchestra.core.base.words import plural

if TYPE_CHECKING:
    import argparse

    from orchestra.core.fleet import Fleet
    from orchestra.core.fleet.compare import Comparison

HEADINGS = {"rank": "#", "same": "same tree"}


def cmd_compare(fleet: Fleet, args: argparse.Namespace) -> int:
    from orchestra.core.fleet.compare import choose, compare
    if args.choose:
        from orchestra.core.git.actor import current_actor
        with interrupts_deferred():
            done = choose(fleet, args.group, args.choose, current_actor(fleet.repo.root), force=args.force)
        if not done.merged:  # an approval rule wants more people; the others wait for the merge
            print(f"Approved {done.chosen.id}: it merges when the approval rules are met; "
                  "the other candidates stay in review until then.")
            return 0
        rejected = ", ".join(run.id for run in done.rejected) or "none left open"
        print(f"Chose {done.chosen.id}: merged into {done.chosen.target}; rejected {rejected} "
              f"(\"another candidate chosen: {done.chosen.id}\").")
        return 0
    found = compare(fleet, args.group, time.time())
    print(json.dumps(found.to_json(), indent=2) if args.json else table(found))
    return 0


def table(found: Comparison) -> str:
    """The candidates as aligned columns, best first, and how to choose."""
    from orchestra.core.fleet.compare import COLUMNS
    rows = [[HEADINGS.get(column, column) for column in COLUMNS]]
    rows += [[candidate.cells()[column] for column in COLUMNS] for candidate in found.candidates]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [f"group {found.group} · {found.spec or 'task'} · {plural(len(found.candidates), 'candidate')}"
             " · ranked on evidence: gates, then findings, then diff size"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    chosen = found.chosen
    if chosen is not None:
        lines.append(f"decided: {chosen.id} was chosen")
    elif found.open:
        best = found.open[0].run.id
        lines.append(f"choose one: orchestra compare {found.group} --choose {best}")
    return "\n".join(lines)
