"""Every process a run starts, found and ended, with or without a sandbox.

In the sandbox the pid namespace does it: when the agent's command ends, or bwrap is killed, every
process inside dies, and bwrap dies with the supervisor (--die-with-parent). Without a sandbox:

- the supervisor is a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so whatever an agent, a setup
  command or a gate leaves behind (setsid daemons, double forks) is re-parented to it instead of init;
  `Reaper.end_all` walks its descendants in /proc and ends them (stopped first, so none forks meanwhile,
  then killed, until a walk finds none) when the agent's turn ends, on stop and timeout, and when the
  supervisor exits;
- the agent gets PR_SET_PDEATHSIG(SIGKILL), so it dies when its supervisor does; what it started may
  escape that, so the fleet ends it afterwards (`end_leftovers`) from the run record: the agent's pid
  and start time, its process group and session, and the run's variables in a process's environment.

Every signal goes through a pidfd opened, then checked against the process's start time (field 22 of
/proc/<pid>/stat), so a pid reused by an unrelated process is never hit.

cgroups are not used. An ordinary user has no cgroup of their own to create without systemd's
delegation (`systemd-run --user --scope`), and hosts mix v1 and v2 hierarchies (this one, even as
root). Where they would help (a kill no fork can race), the pid namespace of the sandbox already gives
the same guarantee; the subreaper needs no privilege and catches the same escapes a cgroup would
(setsid, double fork). What neither catches without a sandbox: work handed to a daemon that was
already running (systemd --user, at, a tmux server), and an orphan that clears its environment after
its supervisor was SIGKILLed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
END_DEADLINE = 3.0  # seconds end_all keeps walking while processes are still dying
UNIX_LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


@dataclass(frozen=True)
class Proc:
    """One process as /proc shows it; start is in clock ticks after boot."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int
    state: str

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def read_proc(pid: int) -> Proc | None:
    """The process's stat line, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]), fields[0])
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When the process started (field 22 of /proc/<pid>/stat), which a reused pid does not share."""
    proc = read_proc(pid)
    return proc.start if proc else None


def now_ticks() -> int:
    """Clock ticks after boot now, comparable with start times (rounded up)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return int(uptime * os.sysconf("SC_CLK_TCK")) + 1


def all_processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := read_proc(int(entry))) is not None:
            found[proc.pid] = proc
    return found


def descendants(root: int, table: dict[int, Proc], skip: Iterable[int] = ()) -> list[Proc]:
    """root's descendants in table (root excluded), leaving out the subtrees of skip."""
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    skipped, found, todo = set(skip), [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child.pid not in skipped and child.pid != root:
                found.append(child)
                todo.append(child.pid)
    return found


def become_subreaper() -> bool:
    """Make this process the one orphaned descendants are re-parented to (instead of init)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec for a child of parent: SIGKILL it when parent dies. Only prctl and getppid: safe after fork."""
    def preexec() -> None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: nobody would kill this one
            os._exit(137)
    return preexec


def signal_exact(proc: Proc, sig: int) -> bool:
    """Send sig to proc only if its pid still names the process that started at proc.start."""
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return False
    except OSError:  # no pidfds here (Linux < 5.3): the check below narrows, not closes, the race
        fd = None
    try:
        if start_time(proc.pid) != proc.start:
            return False
        if fd is None:
            os.kill(proc.pid, sig)
        else:
            signal.pidfd_send_signal(fd, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


def end_processes(find: Callable[[], list[Proc]], deadline: float = END_DEADLINE) -> list[Proc]:
    """Stop, then kill, every live process find returns, until it returns none; what is left at the deadline."""
    until = time.monotonic() + deadline
    while True:
        found = [proc for proc in find() if proc.live]
        if not found or time.monotonic() > until:
            return found
        for proc in found:
            signal_exact(proc, signal.SIGSTOP)  # a stopped process cannot fork while its siblings die
        for proc in found:
            signal_exact(proc, signal.SIGKILL)
        time.sleep(0.005)


def listening_on(path: Path, pids: Iterable[int]) -> set[int]:
    """Those of pids holding the listening Unix socket bound at path."""
    inodes = set()
    try:
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            cols = line.split(maxsplit=7)
            if len(cols) == 8 and cols[7] == str(path) and int(cols[3], 16) & UNIX_LISTENING:
                inodes.add(f"socket:[{cols[6]}]")
    except (OSError, ValueError):
        return set()
    return {pid for pid in pids if inodes and _holds(pid, inodes)} if inodes else set()


def _holds(pid: int, links: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in links:
                return True
        except OSError:
            continue
    return False


class Reaper:
    """This process's descendants: adopted when orphaned, ended together.

    spare picks, from the pids of the descendants, those to leave running with their subtrees (the llm
    host, which serves every run and is started by an agent)."""

    def __init__(self, spare: Callable[[list[int]], set[int]] | None = None) -> None:
        self.root = os.getpid()
        self.spare = spare or (lambda pids: set())

    def adopt(self) -> bool:
        return become_subreaper()

    def find(self) -> list[Proc]:
        table = all_processes()
        everyone = descendants(self.root, table)
        return descendants(self.root, table, self.spare([proc.pid for proc in everyone]))

    def end_all(self) -> list[Proc]:
        """End every descendant but the spared; what survived the deadline (stuck in the kernel, say)."""
        return end_processes(self.find)

    def reap_orphans(self) -> None:
        """Collect adopted children that have exited. Only when this process waits for no child of its own
        (at the end of the agent's turn): a waitpid here would take another waiter's exit status."""
        for proc in all_processes().values():
            if proc.ppid == self.root and not proc.live:
                try:
                    os.waitpid(proc.pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def leftovers(pid: int, start: int, until: int, marks: dict[str, str]) -> list[Proc]:
    """What is left of an agent whose supervisor died: the agent (pid, started at start), its process group
    and session, processes whose environment holds every marks variable, and their descendants; only
    processes started between the agent and until (a later run's processes, or a reused pid, are not)."""
    table = all_processes()
    within = {p.pid: p for p in table.values() if start <= p.start <= until}
    holder = table.get(pid)
    ours = holder is None or holder.start == start  # pid names the agent, or nobody: its group is the agent's
    within.pop(os.getpid(), None)
    found = {p.pid: p for p in within.values()
             if (p.pid == pid and p.start == start) or (ours and pid in (p.pgid, p.sid)) or _marked(p.pid, marks)}
    for proc in list(found.values()):
        found.update((d.pid, d) for d in descendants(proc.pid, within))
    return list(found.values())


def _marked(pid: int, marks: dict[str, str]) -> bool:
    if not marks:
        return False
    try:
        environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    except OSError:
        return False
    return all(f"{name}={value}".encode() in environ for name, value in marks.items())


def end_leftovers(pid: int | None, start: int | None, marks: dict[str, str], until: int | None = None) -> list[Proc]:
    """End what is left of an agent whose supervisor died (see leftovers); nothing without a start time,
    which alone tells the agent from a process that reused its pid."""
    if not pid or start is None:
        return []
    end = until if until is not None else now_ticks()
    return end_processes(lambda: leftovers(pid, start, end, marks))
