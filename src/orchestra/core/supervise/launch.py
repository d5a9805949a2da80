"""The supervisor launcher: one process that loads a supervisor's modules once and forks a supervisor per run.

A supervisor spends most of its own CPU time loading its modules (asyncio, the gates, the jail, the secret
scanner with the HTTP library it brings: about 0.3 s per run). A spawn of many runs starts this launcher
first (processes.SupervisorBatch); it loads all that while the spawn makes the runs, then reads run ids,
one per line, from its stdin and forks a supervisor for each at once, reporting "<run id> <pid>" on its
stdout. At the end of its input it exits; the supervisors it forked go on (each in a session of its own).

Each forked supervisor is indistinguishable from one started on its own (processes.start_supervisor): its
own session and niceness, its run's log as stdout and stderr, no descriptor of the launcher's, and its own
command line (name_process writes it over the launcher's, which leaves room for it), by which orchestra
recognises a run's supervisor. Where the command line cannot be written, the child executes the supervisor
afresh instead: slower, never different.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import traceback
from pathlib import Path

from orchestra.core.base.faults import declare, fault_point
from orchestra.core.base.files import owner_only
from orchestra.core.base.procs import FLEET_NICENESS, yield_cpu
from orchestra.core.supervise.processes import SUPERVISOR_MODULE, supervisor_argv

ROOM = "--room"  # the launcher's last argument: room for a forked supervisor's longer command line
FORKED = declare("launch.forked")  # a supervisor is forked, its pid not yet reported


def launcher_argv(state_dir: Path, mode: str) -> list[str]:
    """How the launcher is started: the supervisor's command line for the longest run id fits in its own."""
    room = len(SUPERVISOR_MODULE) + 24  # the module's name, a run id, --mode and its value
    return [sys.executable, "-m", __name__, str(state_dir), mode, ROOM, "x" * room]


def warm_up() -> None:
    """Load what every supervisor loads (and the secret scanner, which each loads at its first gate)."""
    import orchestra.core.supervise.supervisor  # noqa: F401
    from orchestra.core.base.watch import notifier_class
    from orchestra.core.gates.secret_scan import load_scanner
    load_scanner()
    notifier_class()


def name_process(argv: list[str]) -> bool:
    """Make /proc/self/cmdline (and ps) show argv: written over this process's own argument area, which must
    be long enough (its start and end are fields 48 and 49 of /proc/self/stat). False when it cannot be."""
    wanted = b"\0".join(arg.encode() for arg in argv) + b"\0"
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
    except (OSError, IndexError, ValueError):
        return False
    if not start or end - start < len(wanted):
        return False
    ctypes.memmove(start, wanted.ljust(end - start, b"\0"), end - start)
    try:
        return Path("/proc/self/cmdline").read_bytes().rstrip(b"\0") == wanted.rstrip(b"\0")
    except OSError:
        return False


def supervise_forked(state_dir: str, run_id: str, mode: str) -> None:
    """In a child just forked: detach, take the run's log as output, and run its supervisor (never returns)."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    log = owner_only(str(Path(state_dir) / "runs" / run_id / "supervisor.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)  # the launcher's stdin and stdout (pipes to the spawn) are closed in this process from here
    os.close(null)
    os.close(log)
    argv = supervisor_argv(state_dir, run_id, mode)
    if not name_process(argv):
        os.execv(sys.executable, argv)
    sys.argv = argv[2:]
    if "random" in sys.modules:  # forked supervisors must not share one sequence
        sys.modules["random"].seed()
    from orchestra.core.supervise.supervisor import exit_now, main
    status = 1
    try:
        status = main(argv[3:])
    finally:
        exit_now(status)


def serve(state_dir: str, mode: str) -> None:
    """Fork a supervisor for each run id read from stdin; report each one's pid on stdout."""
    for line in sys.stdin:
        run_id = line.strip()
        if not run_id:
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                supervise_forked(state_dir, run_id, mode)
            except BaseException:  # noqa: BLE001 - nothing of the launcher may run on in a child
                traceback.print_exc()
            os._exit(1)
        fault_point(FORKED)
        print(run_id, pid, flush=True)


def main(argv: list[str]) -> int:
    state_dir, mode = argv[0], argv[1]
    yield_cpu(FLEET_NICENESS)  # fleet work, like the supervisors it starts (it leads its own session)
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - each child loads what it needs itself, or fails in its run's log
        traceback.print_exc()
    gc.freeze()  # what is loaded now is never collected in the children, so they share its pages longer
    serve(state_dir, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
