"""What a host does for a run sent to it: `orchestra remote VERB`, run over ssh by the run's relay.

Everything is under the host's orchestra directory (`--path`): `repos/KEY`, the repository's mirror (a
repository with no checkout of its own, which pushes fill), whose `.git/orchestra` holds the runs' records and
logs as any repository's does; `data/`, the worktrees and the runs' private homes. The run works there exactly
as a local one does, under the same supervisor. What is never there: the ledger, the user's keys (only what a
run declares, in its own 0600 state, deleted when its worktree is), and any decision.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestra.core.base.errors import ActionRefused, BadUsage, OrchestraError
from orchestra.core.base.files import write_atomic
from orchestra.core.git.mirror import base_ref
from orchestra.core.git.repo import Repository
from orchestra.core.git.runner import git
from orchestra.core.runs.lifecycle import ACTIONS, TransitionRefused, create, transition
from orchestra.core.runs.run import Run
from orchestra.core.runs.workflow import PLAN_FILE
from orchestra.core.runs.store import DECLARED_FILE, EVENTS_FILE, STATE_FILE, RunStore, is_run_id

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}")
# What the conductor's side says of a run that it already has here: a redirect's state and feedback, a plan.
CONDUCTOR_FIELDS = ("state", "message", "feedback", "redirects", "comments", "workflow", "task", "spec_config",
                    "agent_config", "review_config")
FOLLOW_WAIT_MS = 2000  # how long the stream waits for a change before it looks at the supervisor again
FOLLOW_STEP_MS = 10
READ_LIMIT = 1 << 20  # bytes of the log sent in one go
FILE_LIMIT = 1 << 20  # bytes of a gate's log or a plan sent (its end, when it is longer)


def host_repository(path: str, key: str) -> Repository:
    """The mirror of a repository on this host; its worktrees and jails go under path too."""
    if not KEY.fullmatch(key):
        raise BadUsage(f"{key[:60]!r} is not a repository's key")
    base = Path(os.path.expanduser(path))
    if not base.is_absolute():
        raise BadUsage(f"{path!r} is not an absolute directory")
    os.environ["XDG_DATA_HOME"] = str(base / "data")  # repo.worktrees_dir and jails_dir, and the runs' processes
    root = base / "repos" / key
    return Repository(root=root, common_dir=root / ".git")


def prepare(repo: Repository) -> dict[str, Any]:
    """Make the mirror if it is not there yet; where it is."""
    if not (repo.common_dir / "HEAD").is_file():
        repo.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(repo.root.parent.parent, 0o700)
        git(repo.root.parent, "init", "--quiet", repo.root.name)
    RunStore(repo.state_dir).make_private()
    return {"mirror": str(repo.root)}


def start(repo: Repository, order: dict[str, Any], mode: str) -> dict[str, Any]:
    """Take a run sent here (or its redirect) and start its supervisor; where its worktree is."""
    from orchestra.core.git.worktrees import create_worktree
    from orchestra.core.supervise.ports import allocate_block
    from orchestra.core.supervise.processes import start_supervisor, supervisor_alive
    sent = order.get("run")
    if not isinstance(sent, dict) or not isinstance(sent.get("id"), str) or not is_run_id(sent["id"]):
        raise BadUsage("the order names no run")
    run_id = sent["id"]
    store = RunStore(repo.state_dir)
    store.make_private()
    run_dir = store.run_dir(run_id)
    if not (run_dir / STATE_FILE).is_file():
        base = str(sent.get("base"))
        if git(repo.root, "rev-parse", "--verify", "--quiet", base_ref(run_id), check=False) != base:
            raise OrchestraError(f"the run's base {base[:10]} was not pushed here")
        path = repo.worktrees_dir / run_id
        tree = create_worktree(repo, path, str(sent.get("branch")), base)
        run_dir.mkdir(mode=0o700, exist_ok=True)
        run = Run.from_json({**sent, "worktree": str(path), "gitdir": str(tree.gitdir), "state": "queued",
                             "message": "", "supervisor_pid": None, "host": None, "remote": None, "slot_wait": None,
                             "gates": {}, "port": allocate_block(repo.state_dir, run_id)})
        create(store, run)
    elif supervisor_alive(existing := store.load(run_id)):  # sent twice (a relay died before it heard back):
        return {"worktree": existing.worktree, "pid": existing.supervisor_pid}  # one supervisor, not two
    else:
        fresh = Run.from_json({**sent, "worktree": "", "gates": {}})

        def overlay(run: Run) -> None:
            for key in CONDUCTOR_FIELDS:
                if key in sent:
                    setattr(run, key, getattr(fresh, key))
        store.update(run_id, overlay)
    plan = order.get("plan")
    if isinstance(plan, str):  # the plan the conductor approved (perhaps edited): what the next stages follow
        write_atomic(run_dir / PLAN_FILE, plan, mode=0o600)
    declared = order.get("declared") or {}
    if not isinstance(declared, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in declared.items()):
        raise BadUsage("the order's declared variables are not names and values")
    if declared:
        write_atomic(run_dir / DECLARED_FILE, json.dumps(declared), mode=0o600)
    else:
        (run_dir / DECLARED_FILE).unlink(missing_ok=True)
    pid = start_supervisor(repo.state_dir, run_id, repo.root, mode)
    store.update(run_id, lambda run: setattr(run, "supervisor_pid", run.supervisor_pid or pid))
    return {"worktree": str(repo.worktrees_dir / run_id), "pid": pid}


def follow(repo: Repository, run_id: str, offset: int, once: bool = False) -> Iterator[dict[str, Any]]:
    """The run's log from the byte offset (whole lines only, each with the offset after it) and its record
    whenever it changes; until the run's supervisor has ended and all is sent (then "end"), or at once."""
    from orchestra.core.base.watch import STEP_MS, Notifier
    from orchestra.core.fleet.fleet import Fleet
    from orchestra.core.supervise.processes import supervisor_alive
    store = RunStore(repo.state_dir)
    run_dir = store.run_dir(run_id)
    if not (run_dir / STATE_FILE).is_file():
        raise OrchestraError(f"there is no run {run_id} here")
    fleet = Fleet(repo, None)
    files = RunFiles(run_dir)
    notifier = Notifier(str(run_dir))  # from now on: a change after a read is seen
    seen: tuple[int, int] | None = None
    try:
        while True:
            offset, events = _read_from(run_dir / EVENTS_FILE, offset)
            yield from events
            yield from files.changed()
            stat = (run_dir / STATE_FILE).stat()
            if (stat.st_mtime_ns, stat.st_size) != seen:
                seen = (stat.st_mtime_ns, stat.st_size)
                try:
                    yield {"k": "run", "r": json.loads((run_dir / STATE_FILE).read_bytes())}
                except ValueError:
                    seen = None  # caught mid-write by a writer that is not atomic: read it again
            if events:
                continue  # there may be more: read until none is left
            run = store.load(run_id)
            if not once and (supervisor_alive(run) or fleet.reconcile(run).is_active):
                # (A run whose supervisor is starting is active, not alive yet.) While its agent works, what it
                # writes is looked for every FOLLOW_STEP_MS, so it reaches the conductor's pane at once.
                notifier.wait(5, FOLLOW_WAIT_MS, step_ms=FOLLOW_STEP_MS if run.is_active else STEP_MS)
                continue
            # Its supervisor has ended (a dead one's run is now interrupted): what is left, then the end.
            offset, events = _read_from(run_dir / EVENTS_FILE, offset)
            yield from events
            if not events and _unchanged(run_dir, seen):
                yield {"k": "end"}
                return
    finally:
        notifier.close()


class RunFiles:
    """The run's files the conductor reads beside its record: its gate logs (`gates/NAME.log`) and a workflow's
    plan (plan.md); each sent whole (or its last FILE_LIMIT bytes) when it changed."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.seen: dict[str, tuple[int, int]] = {}

    def changed(self) -> Iterator[dict[str, Any]]:
        try:
            logs = [f"gates/{entry.name}" for entry in os.scandir(self.run_dir / "gates")
                    if entry.name.endswith(".log") and entry.is_file()]
        except FileNotFoundError:
            logs = []
        for name in [*logs, PLAN_FILE]:
            try:
                stat = (self.run_dir / name).stat()
            except FileNotFoundError:
                continue
            if self.seen.get(name) == (stat.st_mtime_ns, stat.st_size):
                continue
            self.seen[name] = (stat.st_mtime_ns, stat.st_size)
            with open(self.run_dir / name, "rb") as file:
                file.seek(max(0, stat.st_size - FILE_LIMIT))
                data = file.read(FILE_LIMIT)
            yield {"k": "file", "name": name, "text": data.decode("utf-8", "replace")}


def _unchanged(run_dir: Path, seen: tuple[int, int] | None) -> bool:
    stat = (run_dir / STATE_FILE).stat()
    return (stat.st_mtime_ns, stat.st_size) == seen


def _read_from(path: Path, offset: int) -> tuple[int, list[dict[str, Any]]]:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read(READ_LIMIT)
    except FileNotFoundError:
        return offset, []
    found = []
    end = data.rfind(b"\n") + 1
    position = offset
    for line in data[:end].splitlines(keepends=True):
        position += len(line)
        try:
            event = json.loads(line)
        except ValueError:
            continue
        found.append({"k": "ev", "end": position, "e": event})
    return offset + end, found


def stop(repo: Repository, run_id: str) -> dict[str, Any]:
    """Stop the run's supervisor here (it commits the agent's work); a working run becomes stopped."""
    from orchestra.core.supervise.processes import stop_supervisor
    store = RunStore(repo.state_dir)
    run = store.load(run_id)
    stop_supervisor(run, current=lambda: store.load(run_id))
    try:
        run = transition(store, run_id, "stopped", "stopped by the conductor", expect=ACTIONS["stop"],
                         supervisor_pid=None)
    except (ActionRefused, TransitionRefused):
        run = store.set(run_id, supervisor_pid=None)
    return {"state": run.state}


def clean(repo: Repository, run_id: str) -> dict[str, Any]:
    """The run is decided where its conductor is: remove its worktree here unless something in it would be
    lost, and its declared values in any case. Its branch stays in the mirror."""
    from orchestra.core.git.cleanup import remove_worktree
    from orchestra.core.git.worktrees import run_tree
    store = RunStore(repo.state_dir)
    run = store.load(run_id)
    stop(repo, run_id)
    (store.run_dir(run_id) / DECLARED_FILE).unlink(missing_ok=True)
    kept = remove_worktree(repo, run_tree(repo, Path(run.worktree), run.branch, run.gitdir, run_id), ())
    store.update(run_id, lambda r: setattr(r, "finished", r.finished or time.time()))
    return {"kept": kept.to_json() if kept else None}


def attach(repo: Repository, run_id: str, detach_key: bytes) -> tuple[bool, str]:
    """This terminal (the ssh session's) to the run's live session here."""
    from orchestra.core.supervise.sessions import talk
    store = RunStore(repo.state_dir)
    said = talk(store.load(run_id), store.run_dir(run_id), detach_key)
    return said.ok, said.message


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
