"""Each kind of verify check behind one interface: a command ran; its kind turns that into the gate.

A plain check is its command's exit status (and JUnit/pytest counts). A check with `sarif` is judged on
the report's results in the lines the candidate changed; with `coverage`, on the report's percentages;
`benchmark` compares what it prints with the same command on the merge base's tree; `prove` runs the tests
the candidate adds or changes on the base tree too. The verifier calls `judge` after every command; the
kind-specific modules do the rest, each with what CheckContext gives it, nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestra.core.runs.run import Gate, Run


@dataclass(frozen=True)
class OtherTree:
    """A check's command to run on another tree than the candidate's: commit's files, with the files at
    overlay paths taken from overlay_from (the candidate's tree) on top. Its log is
    `gates/<label>/<check name>.log`; collect, when given, reads what the command left in the directory
    it ran in (called with that directory, in a thread, before the directory is removed)."""

    check: dict[str, Any]  # the check as the spec holds it: name, command, timeout, junit, report paths
    commit: str
    label: str = "base"
    overlay: tuple[str, ...] = ()
    overlay_from: str | None = None
    collect: Callable[[Path], Any] | None = None


# Runs a check's command on another tree (the merge base's; the base's with the candidate's tests on top)
# in the run's jail: its gate there, and what collect read (None without collect).
RunElsewhere = Callable[[OtherTree], Awaitable[tuple[Gate, Any]]]


@dataclass
class CheckContext:
    """What judging one check may use: the run, its worktree, the git dir to read commits from."""

    run: Run
    check: dict[str, Any]
    tree: str
    worktree: Path
    git_dir: Path
    since: str  # the merge base the candidate is measured against
    run_elsewhere: RunElsewhere | None = None
    cache_dir: Path | None = None  # where results per tree may be kept (benchmarks of the target)
    _changed: dict[str, set[int]] | None = field(default=None, repr=False)

    def changed_lines(self) -> dict[str, set[int]]:
        """path → lines of the candidate the change adds or alters (read once)."""
        if self._changed is None:
            from orchestra.core.git.diffs import added_lines
            self._changed = added_lines(self.git_dir, self.since, self.run.candidate or self.tree)
        return self._changed


async def judge(ctx: CheckContext, gate: Gate) -> Gate:
    """The gate of a check whose command has run: its kind decides (a plain check: unchanged)."""
    check = ctx.check
    if check.get("sarif"):
        from orchestra.core.gates.sarif import judge_sarif
        gate = await judge_sarif(ctx, gate)
    if check.get("coverage"):
        from orchestra.core.gates.coverage import judge_coverage
        gate = await judge_coverage(ctx, gate)
    if check.get("benchmark"):
        from orchestra.core.gates.benchmark import judge_benchmark
        gate = await judge_benchmark(ctx, gate)
    if check.get("prove"):
        from orchestra.core.gates.prove import judge_prove
        gate = await judge_prove(ctx, gate)
    return gate
