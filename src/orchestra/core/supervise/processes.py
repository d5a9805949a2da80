"""Start, find and stop run supervisors: detached processes that outlive whoever started them; end what
the agent of a supervisor that died left running."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import owner_only
from orchestra.core.runs.run import Run
from orchestra.core.supervise.reaper import end_leftovers, now_ticks

SUPERVISOR_MODULE = "orchestra.core.supervise.supervisor"
# Supervisors started by an older orchestra run under the old path; they are just as alive.
SUPERVISOR_MODULES = (SUPERVISOR_MODULE, "orchestra.core.supervisor")
STOP_TIMEOUT = 20.0


def supervisor_argv(state_dir: Path | str, run_id: str, mode: str) -> list[str]:
    """A run's supervisor's command line: how orchestra recognises the process as that run's supervisor."""
    return [sys.executable, "-m", SUPERVISOR_MODULE, str(state_dir), run_id, "--mode", mode]


def start_supervisor(state_dir: Path, run_id: str, cwd: Path, mode: str = "run") -> int:
    """Start a run's supervisor in its own session (so a dying UI or SSH drop does not end it)."""
    run_dir = state_dir / "runs" / run_id
    with open(run_dir / "supervisor.log", "ab", opener=owner_only) as log:
        proc = subprocess.Popen(supervisor_argv(state_dir, run_id, mode), cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    # Reap it when it ends so a long-lived UI collects no zombies; after the UI ends, init does.
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{run_id}").start()
    return proc.pid


def policy_argv(root: Path | str, run_id: str, wait: bool = False) -> list[str]:
    """The autonomy policy's command line for a run (fleet.autopilot): how its supervisor asks it."""
    return [sys.executable, "-m", "orchestra.cli", "-C", str(root), "policy", run_id, *(["--wait"] if wait else [])]


def start_policy(state_dir: Path, run_id: str, root: Path, wait: bool = False) -> subprocess.Popen:
    """Ask the autonomy policy about a run, in a process of its own session: an accept by policy stops the
    run's supervisor (which asks), so it cannot run inside it. Its output goes to the run's policy.log.
    wait: it loads what it needs, then waits for "go" on its stdin (supervise.asking)."""
    return start_orchestra(policy_argv(root, run_id, wait), root, state_dir / "runs" / run_id / "policy.log",
                           stdin=wait)


def start_integrate(state_dir: Path, run_id: str, group: str, root: Path) -> subprocess.Popen:
    """Have the parts of a group integrated if every part is in review (`orchestra integrate GROUP --when-ready`),
    in a process of its own session, its output in the asking run's integrate.log: a part's supervisor asks when
    its run enters review, and the build starts the integration's own supervisor."""
    argv = [sys.executable, "-m", "orchestra.cli", "-C", str(root), "integrate", group, "--when-ready"]
    return start_orchestra(argv, root, state_dir / "runs" / run_id / "integrate.log")


def start_dispatch(state_dir: Path, root: Path) -> None:
    """If a run waits for a slot, have the waiting runs that now have one started (`orchestra dispatch`, in a
    process of its own session): a supervisor or relay whose run no longer holds a slot asks."""
    from orchestra.core.runs.store import anything_waits
    if anything_waits(state_dir):
        start_orchestra([sys.executable, "-m", "orchestra.cli", "-C", str(root), "dispatch"], root,
                        state_dir / "dispatch.log")


def start_orchestra(argv: list[str], root: Path, log_path: Path, stdin: bool = False) -> subprocess.Popen:
    """An orchestra command a supervisor needs done outside itself, in a process of its own session (it outlives
    the asker), its output appended to log_path; reaped when it ends. stdin: a pipe to it, else nothing."""
    with open(log_path, "ab", opener=owner_only) as log:
        proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True, close_fds=True)
    threading.Thread(target=proc.wait, daemon=True, name="reap-orchestra").start()
    return proc


class SupervisorBatch:
    """Supervisors for many new runs, forked by one launcher that loads their modules once (see
    supervise.launch): started first, it loads them while the runs are made; `start` hands it each run.

    Each run's supervisor is the same as start_supervisor's. A run the launcher cannot take (it failed to
    start, or ended) gets a supervisor of its own from start_supervisor instead. One it took but did not
    report (killed meanwhile) gets no second one, which might run beside the first: it has no pid on record,
    so it shows as interrupted once its start-up grace is over, and can be redirected."""

    def __init__(self, state_dir: Path, cwd: Path, mode: str = "run") -> None:
        from orchestra.core.supervise.launch import launcher_argv
        self.state_dir, self.cwd, self.mode = state_dir, cwd, mode
        self.pids: dict[str, int] = {}  # each run's supervisor, once known
        self.sent: list[str] = []  # the runs handed to the launcher
        try:
            with open(state_dir / "launch.log", "ab", opener=owner_only) as log:
                self.proc: subprocess.Popen | None = subprocess.Popen(
                    launcher_argv(state_dir, mode), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=log, start_new_session=True, close_fds=True, text=True)
        except OSError:
            self.proc = None

    def start(self, run_id: str) -> None:
        if not self._handed(run_id):
            self.pids[run_id] = start_supervisor(self.state_dir, run_id, self.cwd, self.mode)

    def _handed(self, run_id: str) -> bool:
        """Whether the launcher took the run (not once it has ended, or failed to start)."""
        if self.proc is None or self.proc.poll() is not None or self.proc.stdin is None:
            return False
        try:
            self.proc.stdin.write(run_id + "\n")
            self.proc.stdin.flush()
        except OSError:  # a broken pipe: it ended meanwhile
            return False
        self.sent.append(run_id)
        return True

    def finish(self) -> dict[str, int]:
        """Every run's supervisor pid, once the launcher has forked them all (it then exits)."""
        if self.proc is not None:
            try:
                out, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:  # a launcher that hangs: what it has not forked starts on its own
                self.proc.kill()
                out, _ = self.proc.communicate()
            except (BrokenPipeError, OSError):
                out = ""
            for line in (out or "").splitlines():
                run_id, _, pid = line.partition(" ")
                if run_id in self.sent and pid.isdigit():
                    self.pids[run_id] = int(pid)
        return self.pids


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def supervisor_alive(run: Run) -> bool:
    """Whether the process recorded as this run's supervisor is alive and really is it."""
    pid = run.supervisor_pid
    if not pid:
        return False
    cmd = _cmdline(pid)
    return any(module in cmd for module in SUPERVISOR_MODULES) and run.id in cmd and not _is_zombie(pid)


def supervisors_of(state_dir: Path, run_id: str) -> list[int]:
    """Live supervisor processes of a run, found by their command line (when its record is unreadable)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = _cmdline(int(entry.name))
            if any(module in cmd for module in SUPERVISOR_MODULES) and str(state_dir) in cmd and run_id in cmd \
                    and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
    return found


def wait_for_exit(run: Run, timeout: float, fd: int | None = None) -> None:
    """Wait until the run's supervisor has ended, or timeout: woken by its exit (a pidfd), not by polling."""
    assert run.supervisor_pid
    own = fd is None
    if own:
        try:
            fd = os.pidfd_open(run.supervisor_pid)
        except OSError:
            fd = None
    deadline = time.monotonic() + timeout
    try:
        while supervisor_alive(run) and time.monotonic() < deadline:
            if fd is None:
                time.sleep(0.02)
            else:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        if own and fd is not None:
            os.close(fd)


def run_marks(run: Run) -> dict[str, str]:
    """Variables every process of the run has in its environment (unless it cleared them)."""
    return {"ORCHESTRA_RUN": run.id, "ORCHESTRA_WORKTREE": run.worktree}


def end_agent_leftovers(run: Run, until: int | None = None) -> None:
    """End what is left of the run's agent after its supervisor died: the agent itself, its process group and
    session, started between the agent's start and now. Given until, a moment no later agent of the run can
    have started before, processes started by then that carry the run's variables count too (they may have
    left the group and session). Nothing without a start time: a pid alone may name another process by now."""
    end_leftovers(run.agent_pgid, run.agent_start, run_marks(run) if until is not None else {}, until)


def _signal(fd: int | None, pid: int, sig: int) -> None:
    try:
        if fd is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass


def stop_supervisor(run: Run, timeout: float = STOP_TIMEOUT, current: Callable[[], Run] | None = None) -> None:
    """Ask a run's supervisor to stop (it stops the agent, ends what it started and commits its work); force
    it if it hangs, then end what its agent left (as current, the fresh record, names it).

    The supervisor is signalled through a pidfd opened before it is recognised, so a pid reused meanwhile
    is never signalled."""
    fd = None
    if run.supervisor_pid:
        try:
            fd = os.pidfd_open(run.supervisor_pid)
        except ProcessLookupError:
            pass
        except OSError:  # no pidfds (Linux < 5.3)
            fd = None
    try:
        if not supervisor_alive(run):
            end_agent_leftovers(run)  # by pid and start time alone: this record may be older than a new agent
            return
        assert run.supervisor_pid
        _signal(fd, run.supervisor_pid, signal.SIGTERM)
        wait_for_exit(run, timeout, fd)
        if supervisor_alive(run):
            _signal(fd, run.supervisor_pid, signal.SIGKILL)
            # It was alive until now, and a run never has two supervisors: all the run's processes are its.
            end_agent_leftovers(_fresh(run, current), until=now_ticks())
    finally:
        if fd is not None:
            os.close(fd)


def _fresh(run: Run, current: Callable[[], Run] | None) -> Run:
    try:
        return current() if current is not None else run
    except OrchestraError:  # an unreadable record: the one we had names the agent as well as any
        return run
