"""The lean watcher: what a run's supervisor becomes once its gates are final, to watch for nothing but a change.

A run in review can wait hours for a decision. Once its gates are final and its worktree has held still
for a while (gates.verifier.LEAN_AFTER), its full supervisor (asyncio, the gates, git, the jail: about
28 MB) replaces itself (os.execv: same pid, so it is still the run's supervisor to every
orchestra process) with this module, which loads only watchfiles' compiled notifier (about 11 MB) and
sleeps in it. On the first change in the worktree, or when the watch has been idle for its allotted
time, it replaces itself with the full supervisor again (`--mode watch`), which commits the edit and
verifies, or stops watching (see gates.verifier); so evidence still goes stale the moment the worktree
changes, and nothing is lost by being lean.

It imports nothing of orchestra's but this file, and no package that imports asyncio: its only
dependencies are the standard library's smallest modules. SIGTERM keeps its default action (the
lean watcher holds nothing to write or end: the supervisor ended its gates' processes before), so a
decision that stops it waits for nothing.

Its command line names the supervisor module it hands back to, which is how `supervisor_alive`
and `supervisors_of` still recognise it as the run's supervisor.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from orchestra.core.base.watch import Notifier, ignored

# Handed to the full supervisor: when the worktree last held still (seconds since the epoch), so the idle
# time it allows is counted from then, not from its start (gates.verifier reads it under the same name;
# this module imports nothing of the gates, to stay lean).
QUIET_SINCE_VARIABLE = "ORCHESTRA_QUIET_SINCE"
DEBOUNCE_MS = 300
STEP_MS = 500  # how often the notifier looks at what it collected: an idle lean watcher wakes rarely
MTIME_SLACK = 1.0  # seconds: a file system's timestamps may lag the clock this much
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def may_become_lean(stop_requested: Callable[[], bool]) -> bool:
    """Whether the supervisor (in its event loop) may become the lean watcher: not when a stop was asked for.
    From here on a stop signal stays pending (blocked), so the lean watcher gets it as soon as it starts."""
    import asyncio  # the supervisor's: the lean watcher itself never runs this

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    await asyncio.sleep(0.01)  # a stop signalled just before is handled now
    if not stop_requested():
        return True
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return False


def become_lean(state_dir: str, run_id: str, worktree: str, watched_until: float, quiet_since: float,
                deadline: float) -> None:
    """Replace this process with the lean watcher of run_id (never returns): changes after watched_until are
    its to find; at deadline (the worktree quiet since quiet_since) it hands back to end the watch."""
    from orchestra.core.supervise.processes import SUPERVISOR_MODULE  # the supervisor's import, not this process's

    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", __name__, SUPERVISOR_MODULE, state_dir, run_id, worktree,
                              repr(watched_until), repr(quiet_since), repr(deadline)])


def become_supervisor(module: str, state_dir: str, run_id: str, since: float | None = None) -> None:
    """Replace this process with the run's full supervisor, watching (never returns)."""
    env = dict(os.environ)
    if since is not None:
        env[QUIET_SINCE_VARIABLE] = repr(since)
    os.execve(sys.executable, [sys.executable, "-m", module, state_dir, run_id, "--mode", "watch"], env)


def changed_since(worktree: str, moment: float) -> bool:
    """Whether anything in the worktree (a file's content, a directory's entries) changed after moment:
    what happened while no notifier watched (between the supervisor's last look and this one's start)."""
    pending = [worktree]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if ignored(entry.name):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime > moment:
                        return True
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                except OSError:
                    return True  # gone meanwhile: that is a change
    return False


def wait_for_change(worktree: str, watched_until: float, deadline: float) -> bool:
    """Sleep until a relevant change in the worktree (True) or the deadline (False)."""
    notifier = Notifier(worktree)
    if changed_since(worktree, watched_until - MTIME_SLACK):
        return True
    while True:
        left_ms = int((deadline - time.time()) * 1000)
        if left_ms <= 0:
            return False
        if notifier.wait(DEBOUNCE_MS, min(left_ms, 2**31 - 1), step_ms=STEP_MS):
            return True
        if not os.path.isdir(worktree):
            return True  # gone: the supervisor says so and ends


def reap_children() -> None:
    """Collect the exit status of children the supervisor had not yet waited for (no zombies are kept)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv: list[str]) -> None:
    module, state_dir, run_id, worktree, watched_until, quiet_since, deadline = argv
    # The supervisor blocked the stop signals before becoming this: one sent meanwhile ends this process now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    reap_children()
    if wait_for_change(worktree, float(watched_until), float(deadline)):
        become_supervisor(module, state_dir, run_id)
    become_supervisor(module, state_dir, run_id, since=float(quiet_since))


if __name__ == "__main__":
    main(sys.argv[1:])
