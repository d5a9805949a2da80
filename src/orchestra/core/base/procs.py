"""Processes: signals to whole process groups (an agent or a gate is a group, and it ends as one), and how
orchestra's own long-lived processes share the CPU and collect their garbage."""

from __future__ import annotations

import gc
import os
import signal
from pathlib import Path


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group led by pid, ignoring one that is already gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# How far below the conductor's UI fleet work runs: supervisors, agents, gates, setup and review commands.
FLEET_NICENESS = 5


def yielding(argv: list[str], niceness: int = FLEET_NICENESS) -> list[str]:
    """argv started through a shell that first nices its session's autogroup (yield_cpu's, for any program).

    Agents, gates and their commands lead sessions of their own (bubblewrap's --new-session, or their own
    start_new_session, so that a stop ends each as a whole): their autogroups, at niceness 0, competed with
    the conductor's UI as equals whatever the processes' own niceness. The shell writes the autogroup (no
    privilege is needed to lower a priority) and becomes argv: nothing else changes. Without autogroup
    scheduling the write fails, silently, and the inherited niceness is what counts."""
    script = f'{{ echo {int(niceness)} > /proc/self/autogroup; }} 2>/dev/null; exec "$@"'
    return ["/bin/sh", "-c", script, "orchestra-yield", *argv]


def yield_cpu(niceness: int, autogroup: Path = Path("/proc/self/autogroup")) -> None:
    """Run at least niceness below the conductor's UI, in a process that leads its own session.

    With autogroup scheduling (Linux's default on most distributions), a nice value counts only against
    processes of the same session: a supervisor or the llm host, each in a session of its own, competed
    with the UI's session as an equal whatever its nice value, and keys waited for a CPU while 16 runs
    streamed. So the session's autogroup is niced too (raising it needs no privilege). Call it only in a
    process that started its own session: the autogroup is the whole session's."""
    current = os.nice(0)
    if current < niceness:
        os.nice(niceness - current)
    try:
        autogroup.write_text(str(niceness))
    except OSError:
        pass  # no autogroup scheduling here: the process's own niceness is what counts


# gc thresholds for orchestra's own processes: the youngest generation is collected every 20,000 allocations
# instead of 700, and the older ones as rarely. Start-up (Textual's modules above all) makes a great many objects
# that live as long as the process: with the default thresholds they cost 80 young collections and a full
# one, 30 ms of the fleet's first paint. Garbage is collected just as surely, less often.
CALM_GC = (20_000, 20, 50)


def calm_collector(freeze: bool = False) -> None:
    """Collect garbage less often; with freeze, also keep every object alive now out of later collections
    (for objects that live as long as the process: imported modules, the app's widgets)."""
    if freeze:
        gc.freeze()
    gc.set_threshold(*CALM_GC)
