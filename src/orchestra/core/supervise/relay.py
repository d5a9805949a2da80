"""The supervisor of a run that works on another host: it sends the run there and keeps its replica here.

A remote run's record and event log here are what the UI, review, decisions and the ledger read, as for any
run; its worktree, agent, sandbox and gates are on the host, under that host's own orchestra supervisor. The
relay, started wherever a supervisor is (so "is its supervisor alive", stop and settle mean the same), does:

- send: the run's base is pushed to the host's mirror of the repository (git over ssh: only what it lacks),
  then `orchestra remote start` gets the run (its record, and the values of the variables its agent and spec
  declare, on stdin: they are kept there only in the run's own 0600 state) and starts its supervisor there;
- follow: `orchestra remote follow RUN --from OFFSET` streams the host's event log from a byte offset, and its
  record whenever it changes. Each event is appended here with the offset after it ("ro"), so the relay, or
  the next one, resumes exactly where the log here stops: nothing lost, nothing twice. Before a new candidate
  is shown, its branch is fetched back into the user's repository (and must hold it);
- on a dropped connection the run goes on working there; the relay says so once and reconnects, backing off;
- asked to stop (a stop, or a decision settling the run), it stops the host's supervisor, takes what is left
  of the stream, and ends.

The host is untrusted: its record is read as data (Run.from_json, ids and commit ids checked), only progress
fields are taken from it, and never a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from typing import Any

from orchestra.core.base.errors import GitError
from orchestra.core.base.files import file_lock, write_atomic
from orchestra.core.runs.lifecycle import TransitionRefused, transition
from orchestra.core.runs.run import ACTIVE_STATES, DECIDED_STATES, STATES, Run
from orchestra.core.runs.store import RunStore
from orchestra.core.runs.workflow import PLAN_FILE, read_plan
from orchestra.core.supervise.asking import PolicyAsker
from orchestra.core.supervise.jails import repository_of
from orchestra.core.supervise.processes import start_dispatch
from orchestra.core.supervise.ssh import (HostFailed, Place, call, ensure_connection, git_ssh_command, git_url,
                                          ssh_argv)

# What the host's record may change here: the run's progress. Never its id, branch, places, decision.
PROGRESS = ("state", "message", "started", "finished", "exit_code", "candidate", "tree", "files_changed",
            "lines_added", "lines_removed", "changed_paths", "gates", "usage", "activity", "merge_base",
            "review_since", "escapes", "sandbox", "workflow")
REMOTE_STATES = frozenset(STATES) - DECIDED_STATES
MAX_LINE = 8 * 1024 * 1024  # one streamed line (an event or the record); more is a broken or hostile host
MIRRORS_FILE = "mirrors.json"  # the mirrors known at each host: {"<ssh> <path> <repo>": its absolute path there}
STOP_GRACE = 15.0  # seconds a stopped run's stream may take to end by itself
RETRY = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between attempts to reconnect, the last repeated


def place_of(run: Run) -> Place:
    remote = run.remote or {}
    return Place(run.host or "?", str(remote.get("ssh")), str(remote.get("orchestra") or "orchestra"),
                 str(remote.get("path")), str(remote.get("repo")))


def declared_names(run: Run) -> list[str]:
    """The variables a run's agent and spec declare (env, api_key_env): the only values sent to its host."""
    key = run.agent_config.get("api_key_env")  # an llm agent's too: its model is called at the host
    return sorted({*run.declared_env(), *([key] if isinstance(key, str) else [])})


def order_of(run: Run, environ: dict[str, str] | os._Environ[str], plan: str | None = None) -> dict[str, Any]:
    """What the host is sent to start (or restart) the run: its record without what is this machine's, and
    the declared variables' values."""
    record = run.to_json()
    for key in ("worktree", "gitdir", "supervisor_pid", "agent_pgid", "agent_start", "host", "remote", "slot_wait",
                "decision", "kept", "port", "approvals"):
        record.pop(key, None)
    order: dict[str, Any] = {"run": record,
                             "declared": {name: environ[name] for name in declared_names(run) if name in environ}}
    if plan is not None:  # a workflow's plan as the conductor approved it (perhaps edited here)
        order["plan"] = plan
    return order


class Relay:
    """Keeps one remote run's replica here in step with the host (see the module's notes)."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.run = store.load(run_id)
        self.place = place_of(self.run)
        self.repo = repository_of(store.state_dir)
        self.stop_event = asyncio.Event()
        self.offset = self.resume_offset()
        self.lost = False  # the connection dropped and has not come back yet
        self.policy = PolicyAsker(store.state_dir, run_id, self.repo.root)

    # -- the log here ---------------------------------------------------------------------------------------
    def resume_offset(self) -> int:
        """Where the host's log was last taken up to: the "ro" of the last event relayed here."""
        events, _ = self.store.read_events_tail(self.run_id, max_bytes=1 << 20)
        for event in reversed(events):
            if isinstance(event, dict) and isinstance(event.get("ro"), int):
                return event["ro"]
        return 0

    def note(self, text: str) -> None:
        self.store.append_events(self.run_id, [{"type": "note", "text": text}])

    # -- the whole life ---------------------------------------------------------------------------------------
    async def main(self, mode: str) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop_event.set)
        self.store.set(self.run_id, supervisor_pid=os.getpid())
        try:
            why = await asyncio.to_thread(ensure_connection, self.place)
            if why:
                self.note(f"no shared connection to {self.place.name} ({why}); trying on their own")
            start = None
            if mode == "run" or not (self.run.remote or {}).get("worktree"):  # never sent: send it now
                try:
                    start = await self.send()
                except (HostFailed, GitError, OSError) as error:
                    self.fail(f"could not start the run on {self.place.name}: {error}. Check it with `orchestra "
                              f"hosts check {self.place.name}`, then redirect the run to try again")
                    return
            if await self.follow_until_end(start) is False and self.stop_event.is_set():
                await self.stop_remote()  # stopped while the connection was down, or its stream did not end
                await self.follow(once=True)
        finally:
            self.policy.release()  # a warm policy process not asked: it ends, having done nothing
            self.store.set(self.run_id, supervisor_pid=None)

    def fail(self, message: str) -> None:
        try:
            transition(self.store, self.run_id, "failed", message, expect=frozenset({"queued", "working", "waiting"}))
        except TransitionRefused:
            self.note(message)

    # -- sending ------------------------------------------------------------------------------------------
    async def call(self, verb: str, *args: str, stdin: bytes | None = None) -> dict[str, Any]:
        """Run `orchestra remote VERB` on the host (off the event loop); its answer, or HostFailed."""
        return await asyncio.to_thread(call, self.place, verb, *args, stdin=stdin)

    async def send(self) -> tuple[list[str], bytes]:
        """Push the run's base to the host (the first time), and the command that starts (or restarts, after a
        redirect) the run there and then streams it, with the order for its stdin."""
        run = self.store.load(self.run_id)
        if not (run.remote or {}).get("worktree"):
            from orchestra.core.git.mirror import push_base
            for fresh in (False, True):  # a mirror known here may be gone there (its directory removed): ask again
                mirror = await self.mirror_path(fresh)
                try:
                    await asyncio.to_thread(push_base, self.repo, git_url(self.place, mirror), git_ssh_command(),
                                            run.base, run.id)
                    break
                except GitError:
                    if fresh:
                        raise
        plan = read_plan(self.store.run_dir(run.id)) if run.workflow else None
        order = json.dumps(order_of(run, os.environ, plan)).encode()
        argv = ssh_argv(self.place, self.place.remote("start", run.id, "--mode", "run", "--follow", "--from",
                                                      str(self.offset)))
        return argv, order

    def started(self, worktree: Any) -> None:
        """The host took the run: where its worktree is there."""
        if not isinstance(worktree, str) or not worktree.startswith("/"):
            return

        def placed(record: Run) -> None:
            record.remote = {**(record.remote or {}), "worktree": worktree}
            record.worktree = f"{self.place.name}:{worktree}"
        self.run = self.store.update(self.run_id, placed)

    async def stop_remote(self) -> None:
        try:
            await self.call("stop", self.run_id)
        except (HostFailed, OSError) as error:
            self.note(f"could not stop the run on {self.place.name}: {error}; it may still be working there")

    # -- following ----------------------------------------------------------------------------------------
    async def follow_until_end(self, start: tuple[list[str], bytes] | None = None) -> bool:
        """Follow the host's stream (first: the start's, which streams once the host has the run) until the run's
        supervisor there has ended and all is taken, or a stop. A start is never sent twice: after a dropped
        connection the relay follows, and the host says if it never got the run."""
        attempt = 0
        while not self.stop_event.is_set():
            ended, refused = await self.follow(*(start or ()))
            doing = "start" if start else "follow"
            start = None
            if ended or self.stop_event.is_set():
                return ended
            if refused:  # the host's orchestra answered, and it cannot do it: waiting will not help
                self.fail(f"{self.place.name} cannot {doing} the run: {refused}. Check it with `orchestra hosts check "
                          f"{self.place.name}`, then redirect the run to try again")
                return True
            if not self.lost:
                self.lost = True
                self.note(f"the connection to {self.place.name} dropped; the run goes on working there, "
                          "and its events are taken up again once it is back")
            delay = RETRY[min(attempt, len(RETRY) - 1)]
            attempt += 1
            with contextlib.suppress(asyncio.TimeoutError):  # waits delay, or less when asked to stop
                await asyncio.wait_for(self.stop_event.wait(), delay)
            if attempt % 3 == 0:
                await asyncio.to_thread(ensure_connection, self.place)
        return False

    async def follow(self, argv: list[str] | None = None, order: bytes | None = None,
                     once: bool = False) -> tuple[bool, str | None]:
        """One stream of the host's log and record (argv: a start's, which streams too; order: its stdin):
        (whether the host said it ended, all taken; what its orchestra said when it refused)."""
        argv = argv or ssh_argv(self.place, self.place.remote("follow", self.run_id, "--from", str(self.offset),
                                                              *(["--once"] if once else [])))
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE if order is not None
                                                    else asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    limit=MAX_LINE, start_new_session=True)
        assert proc.stdout is not None and proc.stderr is not None
        if order is not None and proc.stdin is not None:
            try:
                proc.stdin.write(order)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it ended at once: what it said is read below
        said = asyncio.ensure_future(proc.stderr.read(65536))
        stopping = asyncio.ensure_future(self.stop_event.wait()) if not once else None
        deadline: float | None = None  # once asked to stop: how long the stream may take to end by itself
        ended = False
        try:
            while True:
                reading = asyncio.ensure_future(proc.stdout.readline())
                waits = {reading, stopping} if stopping else {reading}
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if stopping is not None and stopping in done:
                    # Stopped: the run is stopped at its host, and the stream, seeing its supervisor gone, sends
                    # what is left and its end. (Ending the ssh here would not end it: a channel of the shared
                    # connection outlives its client.)
                    stopping, deadline = None, time.monotonic() + STOP_GRACE
                    await self.stop_remote()
                    if reading not in done:
                        reading.cancel()
                    continue
                if reading not in done:  # the stream did not end in time
                    reading.cancel()
                    break
                try:
                    line = reading.result()
                except (ValueError, asyncio.LimitOverrunError):
                    self.note(f"{self.place.name} sent a line longer than {MAX_LINE} bytes; the stream was restarted")
                    break
                if not line:
                    break
                if await self.take(line):
                    ended = True
                    break
        finally:
            if stopping is not None:
                stopping.cancel()
            if proc.returncode is None:
                proc.kill()
            status = await proc.wait()
            transport = getattr(proc, "_transport", None)
            if transport is not None:  # its pipes: the shared connection may hold their other ends
                transport.close()
        try:
            text = (await asyncio.wait_for(said, 1.0)).decode("utf-8", "replace").strip().splitlines()
        except (asyncio.TimeoutError, OSError, ValueError):
            text = []
        refused = text[-1][:300] if status in (1, 2) and not ended and text else None  # 255: ssh's own failure
        return ended, refused

    async def take(self, line: bytes) -> bool:
        """One message of the stream; True at its end."""
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        kind = message.get("k")
        if self.lost:
            self.lost = False
            self.note(f"connected to {self.place.name} again")
        if kind == "ev":
            end, event = message.get("end"), message.get("e")
            if isinstance(end, int) and end > self.offset and isinstance(event, dict):
                self.store.append_events(self.run_id, [{**event, "ro": end}])
                self.offset = end
        elif kind == "run" and isinstance(message.get("r"), dict):
            await self.merge(message["r"])
        elif kind == "started":
            self.started(message.get("worktree"))
        elif kind == "file" and isinstance(message.get("name"), str) and isinstance(message.get("text"), str):
            self.take_file(message["name"], message["text"])
        return kind == "end"

    def take_file(self, name: str, text: str) -> None:
        """A gate's log, or a workflow's plan, from the host, where the conductor reads it here (any other name
        is not taken: it could point anywhere)."""
        from orchestra.core.gates.commands import gate_log_path
        run_dir = self.store.run_dir(self.run_id)
        if name == PLAN_FILE:
            path = run_dir / PLAN_FILE
        elif name.startswith("gates/") and name.endswith(".log"):
            try:
                path = gate_log_path(run_dir, name.removeprefix("gates/").removesuffix(".log"))
            except ValueError:
                return
        else:
            return
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_atomic(path, text, mode=0o600)

    async def merge(self, data: dict[str, Any]) -> None:
        """Take the host's record's progress into the record here."""
        try:
            remote = Run.from_json(data)
        except (TypeError, ValueError, KeyError, AttributeError):
            self.note(f"{self.place.name} sent a run record orchestra cannot read; it was not taken")
            return
        if remote.id != self.run_id:
            return
        here = self.store.load(self.run_id)
        if remote.candidate and remote.candidate != here.candidate:
            from orchestra.core.git.mirror import fetch_branch
            try:
                url = git_url(self.place, await self.mirror_path())
                await asyncio.to_thread(fetch_branch, self.repo, url, git_ssh_command(), here.branch, remote.candidate)
            except (GitError, HostFailed, OSError) as error:
                self.note(f"could not bring the candidate back from {self.place.name}: {error}")
                return

        def take(record: Run) -> None:
            if record.state in DECIDED_STATES:
                return  # decided here meanwhile: the host's progress no longer matters
            for key in PROGRESS:
                value = getattr(remote, key)
                if key == "state" and value not in REMOTE_STATES:
                    continue
                setattr(record, key, value)
        before = here.state
        after = self.store.update(self.run_id, take)
        if before in ACTIVE_STATES and after.state not in ACTIVE_STATES:  # its slot on the host is free
            start_dispatch(self.store.state_dir, self.repo.root)
        for name, gate in after.gates.items():  # the autonomy policy is asked here, as a supervisor asks it
            old = here.gates.get(name)
            if old is None or (old.status, old.tree) != (gate.status, gate.tree):
                self.policy.consider(self.store, gate)

    async def mirror_path(self, fresh: bool = False) -> str:
        """The absolute path of the repository's mirror on the host: the run's, else the one known for the host
        (mirrors.json: not asked for each run), else (or fresh) asked of the host, which makes it if missing."""
        known = (self.run.remote or {}).get("mirror")
        if not isinstance(known, str) or not known.startswith("/"):
            known = None if fresh else self.known_mirrors().get(self.mirror_key)
        if fresh or known is None:
            known = (await self.call("prepare")).get("mirror")
            if not isinstance(known, str) or not known.startswith("/"):
                raise HostFailed("it named no mirror")
            with file_lock(self.store.state_dir / "mirrors.lock"):
                write_atomic(self.store.state_dir / MIRRORS_FILE,
                             json.dumps({**self.known_mirrors(), self.mirror_key: known}), mode=0o600)
        found = known
        self.run = self.store.update(self.run_id, lambda r: setattr(r, "remote", {**(r.remote or {}), "mirror": found}))
        return found

    @property
    def mirror_key(self) -> str:
        return f"{self.place.ssh} {self.place.path} {self.place.repo}"

    def known_mirrors(self) -> dict[str, str]:
        try:
            known = json.loads((self.store.state_dir / MIRRORS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in known.items() if isinstance(v, str)} if isinstance(known, dict) else {}
