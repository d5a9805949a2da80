"""Running a check on another tree than the candidate's (the target's for benchmarks, the base's for
proving tests), inside the run's jail. Filled in by the evidence gates' work; see gates.evidence."""

from __future__ import annotations

from typing import Any

from orchestra.core.runs.run import Gate


async def run_on_tree(supervisor: Any, command: str, commit: str, overlay: tuple[str, ...]) -> Gate:
    """The gate of `command` run on commit's tree with overlay (paths taken from the candidate) on top."""
    raise NotImplementedError("running a check on another tree is not built yet")
