"""How a run's supervisor asks the autonomy policy (`orchestra policy RUN`, fleet.autopilot) about its run.

Asking starts a process: Python, orchestra's imports, the score and the ledger take most of the time from a
run's last gate turning green to its accept by policy. So the supervisor starts the process *warm*, when a
gate starts on a tree of a pair that may be "auto": it loads all that, then waits on its stdin. The word
"go" makes it apply the policy; the end of its input (the supervisor moved to another tree, stopped or
died) makes it exit having done nothing. A second question on the same tree gets a process of its own.

The processes are the supervisor's descendants, but its sweep of what it leaves running spares them
(`pids`): one that was told "go" stops the supervisor to accept the run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestra.core.runs.hint import hinted_auto
from orchestra.core.runs.run import Gate
from orchestra.core.runs.store import RunStore
from orchestra.core.supervise.processes import start_policy


class PolicyAsker:
    """The warm policy process of one run's current tree, and the pids of every one started."""

    def __init__(self, state_dir: Path, run_id: str, root: Path) -> None:
        self.state_dir, self.run_id, self.root = state_dir, run_id, root
        self.warm: subprocess.Popen | None = None
        self.tree: str | None = None
        self.pids: set[int] = set()
        self.asked: set[tuple[str, str]] = set()  # (tree, why): asked once each

    def consider(self, store: RunStore, gate: Gate) -> None:
        """Ask the autonomy policy about the run (fleet.autopilot decides) when its pair may be "auto" and a
        gate settled that may matter: one that failed or found something (it may demote the pair at once), or
        the last on the run's tree (it may accept the run). Once per tree and reason. The last gate starting
        warms a process up for the question. (A run's supervisor asks as its gates settle; a remote run's
        relay as they come back from its host.)"""
        run = store.load(self.run_id)
        if gate.tree != run.tree or run.tree is None or not hinted_auto(self.state_dir, run.spec, run.agent):
            return
        others_final = all(name in run.gates and run.gates[name].tree == run.tree
                           and run.gates[name].status not in ("pending", "running")
                           for name in run.expected_gates() if name != gate.name)
        if gate.status in ("pending", "running"):
            if others_final:
                self.warm_up(run.tree)
            return
        if others_final:
            why = "settled"
        elif gate.status != "passed" or gate.findings:
            why = gate.name
        else:
            return
        if (run.tree, why) in self.asked:
            return
        self.asked.add((run.tree, why))
        self.ask(run.tree)

    def warm_up(self, tree: str) -> None:
        """Have a process ready for tree (one for an older tree is let go)."""
        if self.warm is not None and self.tree == tree and self.warm.poll() is None:
            return
        self.release()
        try:
            self.warm = start_policy(self.state_dir, self.run_id, self.root, wait=True)
        except OSError:
            return  # asked later, a process is started then (and fails visibly there if it must)
        self.tree = tree
        self.pids.add(self.warm.pid)

    def ask(self, tree: str) -> None:
        """Apply the policy to the run now, on tree: the warm process if it waits for this tree."""
        self.warm_up(tree)
        warm, self.warm, self.tree = self.warm, None, None
        if warm is None or warm.stdin is None:
            return
        try:
            warm.stdin.write(b"go\n")
            warm.stdin.close()
        except OSError:  # it ended meanwhile: a fresh one asks
            fresh = start_policy(self.state_dir, self.run_id, self.root)
            self.pids.add(fresh.pid)

    def release(self) -> None:
        """Let the warm process go, having done nothing (the end of its input)."""
        warm, self.warm, self.tree = self.warm, None, None
        if warm is not None and warm.stdin is not None:
            try:
                warm.stdin.close()
            except OSError:
                pass
