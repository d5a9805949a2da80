"""The supervisor's "integrate" mode: an integration candidate (fleet.integration) made ready for its gates.

Its branch already holds the parts merged onto the target, and its record the candidate's measure; what is
left is what any run's supervisor does before its agent: check the worktree out and set it up (the included
files, the setup commands the gates may need). There is no agent: the run then goes to review, its gates
pending, and the supervisor verifies and watches it like any run in review.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from orchestra.core.supervise.setup import set_up_worktree

if TYPE_CHECKING:
    from orchestra.core.supervise.supervisor import Supervisor


async def prepare_integration(supervisor: Supervisor) -> None:
    """Check out and set up a queued integration's worktree, then put it in review (a later start finds it
    there and only watches)."""
    if supervisor.run.state != "queued":
        return
    await asyncio.to_thread(supervisor.checkout)
    if supervisor.stop_event.is_set():
        supervisor.set_state("stopped", "stopped before the integration was checked out")
        return
    if not await set_up_worktree(supervisor):  # failed or stopped, and why
        return
    now = time.time()
    supervisor.set_state("working", "checked out and set up", started=now)
    supervisor.enter_review({"tree": supervisor.run.tree, "finished": time.time(), "exit_code": 0})
