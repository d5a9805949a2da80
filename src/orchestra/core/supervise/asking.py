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

from orchestra.core.supervise.processes import start_policy


class PolicyAsker:
    """The warm policy process of one run's current tree, and the pids of every one started."""

    def __init__(self, state_dir: Path, run_id: str, root: Path) -> None:
        self.state_dir, self.run_id, self.root = state_dir, run_id, root
        self.warm: subprocess.Popen | None = None
        self.tree: str | None = None
        self.pids: set[int] = set()

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
