"""A new worktree set up like the developer's own checkout, before its agent starts.

First the ignored files `.worktreeinclude` names (`.env`, local settings) are copied from the user's
checkout (copies, never links, modes kept); then the setup commands recorded at spawn
(`[orchestra] setup`, then the spec's, allowed by the conductor: see fleet.trust) run one by one in
the run's jail, in the worktree, with a gate's environment (and the network: they install things),
their output going to the run's event log. A failing command fails the run, naming the command and
its exit status. Once every step has completed the run remembers it (a file in its state directory,
where its agent cannot write), so a redirect sets up again only a run that never finished setting up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.files import write_atomic
from orchestra.core.git.includes import (COPIES_FILE, INCLUDE_FILE, file_digest, include_rules, included_paths)
from orchestra.core.jail import command_in
from orchestra.core.supervise.agent_process import AgentProcess, Outcome
from orchestra.core.supervise.jails import gate_environment, repository_of

if TYPE_CHECKING:
    from orchestra.core.supervise.supervisor import Supervisor

SETUP_TIMEOUT = 1800.0  # seconds one setup command may take
DONE_FILE = "setup-done"
SHOWN_PATHS = 20


async def set_up_worktree(supervisor: Supervisor) -> bool:
    """Copy the included files and run the setup commands; False when the run failed or was stopped
    (its state says which, and why)."""
    done = supervisor.store.run_dir(supervisor.run_id) / DONE_FILE
    if done.exists():
        return True
    await asyncio.to_thread(copy_includes, supervisor)
    for command in supervisor.run.setup:
        if not await run_setup_command(supervisor, command):
            return False
    write_atomic(done, "\n".join(supervisor.run.setup) + "\n", mode=0o600)
    return True


def copy_includes(supervisor: Supervisor) -> None:
    """Copy what `.worktreeinclude` (as committed at the run's base) names from the checkout; say what."""
    run, note = supervisor.run, supervisor.events.note
    root = repository_of(supervisor.store.state_dir).root
    try:
        rules = include_rules(root, run.base)
        paths = included_paths(root, rules) if rules is not None else []
    except OrchestraError as error:
        note(f"{INCLUDE_FILE}: could not list the files to copy from your checkout: {error}")
        return
    copied, skipped = copy_files(root, Path(run.worktree), paths)
    record = {path: file_digest(Path(run.worktree) / path) for path in copied}
    write_atomic(supervisor.store.run_dir(run.id) / COPIES_FILE, json.dumps(record, indent=1), mode=0o600)
    if copied:
        note(f"copied from your checkout ({INCLUDE_FILE}): {shown(copied)}")
    if skipped:
        note(f"{INCLUDE_FILE}: not copied: {shown(skipped)}")


def copy_files(root: Path, worktree: Path, paths: list[str]) -> tuple[list[str], list[str]]:
    """Copy each path from root into worktree (content and mode; a link is copied as the file it points
    at); (copied, not copied with why)."""
    copied, skipped = [], []
    inside = worktree.resolve()
    for path in paths:
        source, target = root / path, worktree / path
        if not source.is_file():
            skipped.append(f"{path} (not a regular file)")
        elif os.path.lexists(target):
            skipped.append(f"{path} (the worktree has it already)")
        elif not _lands_inside(target, inside):
            skipped.append(f"{path} (a link in the worktree leads outside it)")
        else:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                copied.append(path)
            except OSError as error:
                skipped.append(f"{path} ({error.strerror or error})")
    return copied, skipped


def _lands_inside(target: Path, inside: Path) -> bool:
    """Whether target's nearest existing directory is really inside the worktree (no link leads out)."""
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    resolved = parent.resolve()
    return resolved == inside or inside in resolved.parents


def shown(paths: list[str]) -> str:
    more = f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else ""
    return ", ".join(paths[:SHOWN_PATHS]) + more


async def run_setup_command(supervisor: Supervisor, command: str) -> bool:
    """Run one setup command in the run's jail; on failure, fail (or, when asked to, stop) the run."""
    if supervisor.stop_event.is_set():
        supervisor.set_state("stopped", "stopped while setting up the worktree, before the agent started")
        return False
    supervisor.events.note(f"setup: {command}")
    last: deque[str] = deque(maxlen=1)
    outcome = await _run(supervisor, command, last)
    if outcome.stopped:
        supervisor.set_state("stopped", "stopped while setting up the worktree, before the agent started")
    elif outcome.timed_out:
        supervisor.set_state("failed", f"setup command `{command}` ran longer than {SETUP_TIMEOUT:g}s and was stopped")
    elif outcome.exit_code != 0:
        said = f": {last[0]}" if last else ""
        supervisor.set_state("failed", f"setup command `{command}` failed with exit status {outcome.exit_code}{said}")
    return not outcome.stopped and not outcome.timed_out and outcome.exit_code == 0


async def _run(supervisor: Supervisor, command: str, last: deque[str]) -> Outcome:
    # Setup installs things: it gets the network even when the agent does not.
    jail = dataclasses.replace(supervisor.jail, network=True)

    def line(text: str) -> None:
        if text.strip():
            last.append(text.strip())
        supervisor.events.line(text)

    try:
        argv = command_in(jail, ["/bin/sh", "-c", command])
    except OSError as error:
        supervisor.events.note(f"could not start the setup command: {error.strerror or error}")
        return Outcome(127)
    process = AgentProcess(argv, Path(supervisor.run.worktree), gate_environment(jail, supervisor.run), on_line=line,
                           on_start=lambda pid: supervisor.update(agent_pgid=pid))
    supervisor.agent = process  # a stop asked for now stops this command, as it would the agent
    flusher = asyncio.ensure_future(supervisor.flush_periodically())
    try:
        if supervisor.stop_event.is_set():  # asked before the process existed to be stopped
            return Outcome(None, stopped=True)
        return await process.run(SETUP_TIMEOUT)
    except OSError as error:
        supervisor.events.note(f"could not start the setup command: {error.strerror or error}")
        return Outcome(127)
    finally:
        flusher.cancel()
        supervisor.agent = None
        supervisor.events.flush()
