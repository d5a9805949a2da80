"""The per-run supervisor: a detached process that runs the agent, commits its work, verifies and watches.

It is started in its own session so it outlives the UI that started it; all it knows it
writes to the run's state file and event log, which any orchestra process can read. Everything its
agent, setup commands and gates start is its to end (see reaper): it adopts their orphans, and ends
what is left when the agent's turn ends and when it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestra.core.base.faults import declare, fault_point
from orchestra.core.base.files import slot_held
from orchestra.core.git import worktrees
from orchestra.core.git.diffs import candidate_fields
from orchestra.core.git.snapshot import branch_tip, settle
from orchestra.core.git.worktrees import RunTree, WorktreeCorrupted, agent_identity
from orchestra.core.supervise.activity import ActivityWatch
from orchestra.core.jail import JailRefused, command_in
from orchestra.core.supervise.agent_process import AgentProcess, Outcome
from orchestra.core.base.procs import FLEET_NICENESS, yield_cpu
from orchestra.core.supervise.jails import agent_environment, gate_environment, jail_of_run, repository_of
from orchestra.core.supervise.secrets import run_redactor
from orchestra.core.agents.wire import llm_client_variables, llm_host_socket
from orchestra.core.gates.evidence import OtherTree
from orchestra.core.gates.verifier import watch_idle
from orchestra.core.base.output import OUTPUT_LIMIT
from orchestra.core.supervise.events import EventBuffer
from orchestra.core.agents.presets import (PRESET_TABLE, PresetError, cli_invocation, home_files,
                                           interactive_invocation, keeps_stdin_open, recognised_failure, stall_lines)
from orchestra.core.agents.prompts import cli_prompt, work_summary
from orchestra.core.runs.lifecycle import TransitionRefused, transition
from orchestra.core.runs.run import SECRETS_GATE, Gate, Run, review_gate_name
from orchestra.core.runs.store import DECLARED_FILE, RunStore
from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.findings import DEFAULT_BLOCK_ON, findings_of
from orchestra.core.score.roles import role_of
from orchestra.core.supervise.imports import ImportCheckedVerifier
from orchestra.core.supervise.lean_watch import become_lean, may_become_lean
from orchestra.core.supervise.asking import PolicyAsker
from orchestra.core.runs.workflow import paused
from orchestra.core.supervise.reaper import Reaper, listening_on, start_time
from orchestra.core.supervise.processes import start_dispatch
from orchestra.core.supervise.setup import set_up_worktree
from orchestra.core.supervise.sessions import SessionWatch, controlling_terminal, is_interactive, open_terminal

FLUSH_INTERVAL = 0.1
CHECKOUT = declare("supervise.checkout")  # the run's worktree is not yet checked out


class Supervisor:
    """Drives one run from queued to review (or failed/stopped), then keeps its gates fresh."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.run = store.load(run_id)
        store.redact = run_redactor(self.run)  # every event, record and gate log of the run goes through it
        self.worktree = Path(self.run.worktree)
        self.tree: RunTree = worktrees.run_tree(repository_of(store.state_dir), self.worktree, self.run.branch,
                                                self.run.gitdir, run_id)
        self.events = EventBuffer(store, run_id)
        self.stop_event = asyncio.Event()
        self.agent: AgentProcess | None = None
        self.result: dict[str, Any] = {}  # the agent's final record, when it sends one (llm agents)
        self.verifier: ImportCheckedVerifier  # made in main, once the jail is known
        self.activity_written = 0.0
        self.reaper = Reaper(spare=self.spared)
        self.policy = PolicyAsker(store.state_dir, run_id, repository_of(store.state_dir).root)
        self.integrating: set[int] = set()  # `orchestra integrate --when-ready` processes it started (spared)

    def spared(self, pids: list[int]) -> set[int]:
        """What ending this supervisor's descendants leaves running: the llm host, and the autonomy policy's
        process (which stops this supervisor to accept its run)."""
        return spare_llm_host(pids) | ((self.policy.pids | self.integrating) & set(pids))

    def policy_check(self, gate: Gate) -> None:
        self.policy.consider(self.store, gate)

    async def verify_target(self) -> None:
        """An accept by policy merged a tree its gates never saw: run the spec's verify checks on the merge
        commit, in the run's worktree (checked out there, detached) and jail, recording each on the run; then
        ask the policy, which demotes the pair if one failed and removes the worktree."""
        run = self.store.load(self.run_id)
        merge = run.merge_commit
        if run.state != "accepted" or not merge:
            return
        await asyncio.to_thread(self.tree.git, "checkout", "--quiet", "--force", "--detach", merge)
        tree = await asyncio.to_thread(self.tree.git, "rev-parse", f"{merge}^{{tree}}")
        check: dict[str, Any] = {"merge_commit": merge, "tree": tree, "gates": [], "done": False}
        self.update(target_check=check)
        try:
            for spec_check in (run.spec_config or {}).get("verify", []):
                if self.stop_event.is_set():
                    return
                started = time.time()
                try:
                    gate = await self.verifier.run_one(spec_check, tree)
                except Exception as error:  # noqa: BLE001 - recorded as the check's error, like a gate's
                    from orchestra.core.gates.verifier import error_gate
                    gate = error_gate(str(spec_check.get("name")), "command", tree, started, error)
                check["gates"].append({**gate.evidence(), "finished": gate.finished})
                self.update(target_check=check)
        finally:  # back on the run's branch, as the accept left it: its removal finds nothing of its own
            await asyncio.to_thread(self.tree.git, "checkout", "--quiet", "--force", run.branch)
        check["done"] = True
        self.update(target_check=check)
        failed = [gate["name"] for gate in check["gates"] if gate["status"] != "passed"]
        self.events.note(f"after the merge by policy, on {run.target} ({merge[:10]}): " + (
            f"{', '.join(failed)} failed" if failed else f"{len(check['gates'])} verify check(s) passed"))
        self.policy.ask(tree)

    def launch_check(self, command: str) -> tuple[list[str], dict[str, str]]:
        """How a gate's command starts: in the run's jail, with a gate's environment."""
        return command_in(self.jail, ["/bin/sh", "-c", command]), gate_environment(self.jail, self.run)

    async def review(self, run: Run, reviewer: dict[str, Any], tree: str) -> Gate:
        """One reviewer's gate on tree (see gates.review and supervise.reviewing)."""
        from orchestra.core.supervise.reviewing import review_run
        return await review_run(self, run, reviewer, tree)

    async def run_elsewhere(self, other: OtherTree) -> tuple[Gate, Any]:
        """A check's command on another tree, in the run's jail (see supervise.elsewhere)."""
        from orchestra.core.supervise.elsewhere import run_on_tree
        return await run_on_tree(self, other)

    def update(self, **values: Any) -> Run:
        if values.get("agent_pgid") and "agent_start" not in values:
            # Recorded together: only the start time tells the agent from a process that reused its pid.
            values["agent_start"] = start_time(values["agent_pgid"])
        self.run = self.store.set(self.run_id, **values)
        return self.run

    def set_state(self, state: str, message: str = "", **values: Any) -> None:
        """Move the run on (TransitionRefused when a decision moved it elsewhere meanwhile)."""
        self.events.flush()
        self.run = transition(self.store, self.run_id, state, message, **values)

    async def main(self, mode: str) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_stop)
        if not self.reaper.adopt():
            self.events.note("orchestra cannot adopt what the agent leaves running here (no child subreaper); "
                             "its process group and session are still ended")
        self.update(supervisor_pid=os.getpid())
        try:
            self.jail = jail_of_run(self.store.state_dir, self.run)
        except JailRefused as refused:
            fail_run(self.store, self.run_id, str(refused))
            return
        self.update(sandbox=self.jail.describe())
        if not self.jail.sandboxed:
            self.events.note(f"not sandboxed: {self.jail.reason}")
        self.verifier = verifier = ImportCheckedVerifier(self.store, self.run_id, self.tree, self.stop_event,
                                                         self.launch_check, review=self.review,
                                                         run_elsewhere=self.run_elsewhere,
                                                         on_gate=self.policy_check)
        verifier.may_go_lean = True  # once its gates are final, a lean watcher waits for the next change
        try:
            if mode == "target":
                await self.verify_target()
            if mode == "run":
                await self.run_agent()
                if self.store.load(self.run_id).state not in ("working", "waiting"):  # its slot is free
                    start_dispatch(self.store.state_dir, repository_of(self.store.state_dir).root)
            if mode == "integrate":  # an integration candidate: no agent, its worktree checked out and set up
                from orchestra.core.supervise.integrating import prepare_integration
                await prepare_integration(self)
            if (mode != "target" and self.run.state == "review" and not self.stop_event.is_set()
                    and not paused(self.run)):  # a workflow waiting between stages is not watched
                await verifier.verify_and_watch()
        except TransitionRefused as refused:
            self.events.note(f"supervisor ends: {refused}")  # decided meanwhile: nothing more to do
        finally:
            self.policy.release()  # a warm policy process not asked: it ends, having done nothing
            self.events.flush()
            await asyncio.to_thread(self.reaper.end_all)  # what gates or the agent left, before we are gone
            self.update(supervisor_pid=os.getpid() if verifier.lean else None, agent_pgid=None, agent_start=None)
        if verifier.lean:
            if await may_become_lean(self.stop_event.is_set):
                become_lean(str(self.store.state_dir), self.run_id, str(self.worktree), verifier.watched_until,
                            verifier.quiet_since, verifier.quiet_since + watch_idle())
            self.update(supervisor_pid=None)  # asked to stop meanwhile: it ends here
        if self.stop_event.is_set():
            exit_now(0)  # asked to stop, and all is written: no need to wait for the file watcher's thread

    def request_stop(self) -> None:
        self.stop_event.set()
        if self.agent is not None:
            asyncio.ensure_future(self.agent.stop())

    async def run_agent(self) -> None:
        if self.run.started is None:
            await asyncio.to_thread(self.checkout)
            if self.stop_event.is_set():
                self.set_state("stopped", "stopped before the agent started")
                return
            if not await set_up_worktree(self):  # included files, setup commands; failed or stopped if not
                return
        if self.run.workflow:  # the spec's stages, each its own agent's turn (supervise.stages)
            from orchestra.core.supervise.stages import run_stages
            await run_stages(self)
            return
        redirect = self.run.redirects[-1] if self.run.redirects else None
        self.set_state("working", "", started=self.run.started or time.time(), finished=None, exit_code=None)
        if redirect:
            self.events.note(f"redirected: {redirect}")
        outcome = await self.start_agent(redirect)
        self.events.flush()
        await asyncio.to_thread(self.record_outcome, outcome)

    def checkout(self) -> None:
        """Populate the worktree's files, at most two checkouts at once (more only slows 2 cores down)."""
        with slot_held(self.store.state_dir / "checkout-slots", count=2):
            fault_point(CHECKOUT)
            worktrees.populate_worktree(self.tree)

    async def start_agent(self, redirect: str | None, run: Run | None = None) -> Outcome:
        """The agent's turn; run: the run as a workflow stage's agent sees it (default: the run)."""
        run = run or self.run
        config = run.agent_config
        env = agent_environment(self.jail, run, redirect)
        self.result = {}
        interactive = is_interactive(config)
        try:
            command = self.agent_command(config, redirect, env, run)
            if shutil.which(command[0], path=env.get("PATH")) is None:
                raise FileNotFoundError(2, "No such file or directory", command[0])  # said before the sandbox hides it
            if interactive:
                command = command_in(self.jail, command, session=controlling_terminal())
                env["TERM"] = "xterm-256color"  # what the supervisor's screen and most attaching terminals speak
            elif config["kind"] == "llm":
                # The client stays outside the sandbox with the jail's environment plus its model's key (it
                # carries it to the llm host); the model's tools run in the jail, in the runner it starts.
                env.update(llm_client_variables(config, os.environ))
                command += ["--", *command_in(self.jail, [sys.executable, "-m", "orchestra.llm.tool_runner"])]
            else:
                command = command_in(self.jail, command)
        except PresetError as error:
            self.result = {"result": str(error)}
            return Outcome(126)
        except OSError as error:
            self.result = {"result": self.start_failure(config, error)}
            return Outcome(127)
        # Every CLI is watched, to show it waiting (on an open stdin) or stalled (silent, or saying what its
        # preset knows as a stall); CLIs that read stdin to its end get /dev/null and cannot be asked.
        watch = (SessionWatch(stall_lines(config)) if interactive else
                 ActivityWatch(stall_lines=stall_lines(config)) if config["kind"] == "cli" else None)
        open_stdin = config["kind"] == "cli" and keeps_stdin_open(config)
        terminal = open_terminal(self, watch) if interactive else None
        self.agent = AgentProcess(
            command, self.worktree, env, on_line=self.agent_line(watch),
            on_start=lambda pid: self.update(agent_pgid=pid),
            on_record=self.take_record if config["kind"] == "llm" else None,
            on_partial=(lambda text: watch.partial(text, time.monotonic())) if watch else None,
            open_stdin=open_stdin, reaper=self.reaper, terminal=terminal)
        flusher = asyncio.ensure_future(self.flush_periodically(watch))
        try:
            if self.stop_event.is_set():
                return Outcome(None, stopped=True)
            # An interactive session lasts until its CLI exits or the conductor stops it: nobody is waiting
            # on a turn the conductor is taking part in.
            return await self.agent.run(None if interactive else float(config.get("timeout") or 3600))
        except OSError as error:
            self.result = {"result": self.start_failure(config, error)}
            return Outcome(127)
        finally:
            flusher.cancel()
            if terminal is not None:
                await terminal.close()
            self.agent = None
            self.reaper.reap_orphans()  # nothing of ours runs now: every exited child is an adopted orphan
            if watch is not None and self.run.activity:
                self.update(activity=None)

    def agent_command(self, config: dict[str, Any], redirect: str | None, env: dict[str, str],
                      run: Run) -> list[str]:
        if config["kind"] == "llm":
            # The client hands the run to the llm host, which has litellm loaded (once for every run).
            return [sys.executable, "-m", "orchestra.llm.llm_client", str(self.store.state_dir), self.run_id]
        if config["kind"] == "cli":
            last_output = [e["text"] for e in self.store.read_events_tail(self.run_id, 64 * 1024)[0]
                           if e.get("type") == "output"]
            invoke = interactive_invocation if is_interactive(config) else cli_invocation
            invocation = invoke(config, cli_prompt(run), os.environ, redirect=redirect,
                                summary=work_summary(run, last_output))
            env.update(invocation.env)
            for relative, text in home_files(config).items():
                place = self.jail.home / relative
                if not place.exists():
                    place.parent.mkdir(parents=True, exist_ok=True)
                    place.write_text(text)
            if invocation.resumes:
                self.events.note("continuing the agent's own conversation with the instruction")
            return list(invocation.argv)
        return ["/bin/sh", "-c", config["command"]]

    @staticmethod
    def start_failure(config: dict[str, Any], error: OSError) -> str:
        preset = PRESET_TABLE.get(config.get("preset") or "")
        if preset is not None and not config.get("command") and isinstance(error, FileNotFoundError):
            return f"{preset.title} is not installed here ({preset.executable} is not on PATH): {preset.install}"
        return f"could not start the agent: {error.strerror or error}"

    def agent_line(self, watch: ActivityWatch | None) -> Callable[[str], None]:
        if watch is None:
            return self.events.line

        def line(text: str) -> None:
            watch.line(text, time.monotonic())
            self.events.line(text)
        return line

    def check_activity(self, watch: ActivityWatch) -> None:
        """Move a cli run between working and waiting as its output says; record an honest unknown."""
        activity = watch.assess(time.monotonic())
        shown = self.run.activity or {"state": "working", "reason": ""}
        if activity.state == shown["state"] and (activity.state != "stalled" or
                                                 time.monotonic() - self.activity_written < 30):
            return
        self.activity_written = time.monotonic()
        record = {"state": activity.state, "reason": activity.reason}
        state = "waiting" if activity.state == "waiting" else "working"
        if state != self.run.state:
            self.set_state(state, activity.reason if state == "waiting" else "", activity=record)
        else:
            self.update(activity=record)

    def take_record(self, record: dict[str, Any]) -> None:
        """A record from the agent: usage so far goes on the run record; the result is kept for the end."""
        if isinstance(record.get("usage"), dict):
            self.events.flush()
            self.update(usage=record["usage"])
            self.store.append_events(self.run_id, [{"type": "usage", **record["usage"]}])
        if "result" in record:
            self.result = record

    async def flush_periodically(self, watch: ActivityWatch | None = None) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            if self.events.pending:
                self.events.flush()
            ticks += 1
            if watch is not None and ticks % 10 == 0:
                self.check_activity(watch)

    def record_outcome(self, outcome: Outcome, author: str | None = None, final: bool = True,
                       prefix: str = "", ending: Callable[[str, str], dict[str, Any]] | None = None
                       ) -> dict[str, Any] | None:
        """Commit what the agent left, measure it, and move the run to review, failed or stopped. A workflow's
        stage that is not its last (final False) returns what it measured instead of going to review; author
        is the stage's agent, prefix ("2/4 tests: ") starts what a failure says, and ending(state, message)
        gives what is written with a failure (the workflow's log), in the same transition."""
        if self.events.dropped_bytes:
            self.events.note(f"{self.events.dropped_bytes} bytes of output were not kept (limit "
                             f"{OUTPUT_LIMIT // (1024 * 1024)} MiB)")
        finished = {"exit_code": outcome.exit_code, "finished": time.time(), "agent_pgid": None, "agent_start": None}

        def end(state: str, message: str, **values: Any) -> None:
            self.set_state(state, prefix + message, **values, **(ending(state, prefix + message) if ending else {}))
        if outcome.exit_code == 0 and not (outcome.stopped or outcome.timed_out):
            # Watched from before the agent's work is committed: the watch then needs no second look (a walk of
            # every file) for edits made between the commit and its start.
            self.verifier.start_watching()
        try:
            values = self.commit_work(outcome, author)
        except WorktreeCorrupted as error:
            # Nothing is committed through a worktree that no longer belongs to this run.
            end("failed", f"{error}; orchestra committed nothing from it", **finished)
            return None
        values.update(finished)
        if outcome.timed_out:
            limit = self.run.agent_config.get("timeout") or 3600
            end("failed", f"stopped after working longer than its timeout ({limit:g}s)", **values)
        elif outcome.stopped:
            end("stopped", "stopped by the conductor", **values)
        elif outcome.exit_code == 0 and (failure := self.failure_after_0()) is not None:
            # A CLI that exits 0 after an authentication error, a refused permission or a model error failed.
            end("failed", failure, **values)
        elif outcome.exit_code == 0 and not final:
            return values
        elif outcome.exit_code == 0:
            self.enter_review(values)
        else:
            said = self.reported_failure()
            reason = self.result.get("result") or (f"{said} (it exited with status {outcome.exit_code})" if said else
                                                   f"the agent exited with status {outcome.exit_code}")
            end("failed", reason, **values)
        return None

    def enter_review(self, values: dict[str, Any], author: Run | None = None, **more: Any) -> None:
        """The agent's work is done: the run goes to review, its gates pending from that moment, so nobody
        accepts unverified work unasked. author: the run as its last agent saw it (a workflow's last stage:
        a security stage's findings are that agent's)."""
        reported = reported_gates(author or self.run, self.result, values["tree"])
        gates = {**pending_gates(self.run, values["tree"]), **reported}
        self.set_state("review", "", gates=gates, **values, **more)
        if self.run.part_of:  # a spec's part: once every part is in review, their integration is built
            self.ask_integration()

    def ask_integration(self) -> None:
        """Start `orchestra integrate GROUP --when-ready` (it builds nothing unless every part is in review)."""
        from orchestra.core.supervise.processes import start_integrate
        try:
            proc = start_integrate(self.store.state_dir, self.run_id, self.run.group or self.run_id,
                                   repository_of(self.store.state_dir).root)
        except OSError as error:
            self.events.note(f"could not ask for the parts' integration: {error}; `orchestra integrate` builds it")
            return
        self.integrating.add(proc.pid)

    def reported_failure(self) -> str | None:
        """What a cli agent's last output says went wrong though it exited 0 (its preset's failure lines)."""
        config = self.run.agent_config
        if config.get("kind") != "cli" or config.get("command"):
            return None
        lines = [e["text"] for e in self.store.read_events_tail(self.run_id, 64 * 1024)[0] if e.get("type") == "output"]
        return recognised_failure(config, lines)

    def failure_after_0(self) -> str | None:
        """A cli agent's failure line, when it exited 0 all the same: the run failed, in the CLI's words."""
        said = self.reported_failure()
        title = PRESET_TABLE[self.run.agent_config["preset"]].title if said else ""
        return f"{title} reported a failure though it exited 0: {said}" if said else None

    def commit_work(self, outcome: Outcome, author: str | None = None) -> dict[str, Any]:
        """Keep what the agent did to HEAD, commit what it left as the agent (author: a workflow stage's), and
        measure the candidate."""
        stopped = " (stopped)" if outcome.stopped or outcome.timed_out else ""
        what = "work in progress" if stopped else "work"
        author = author or self.run.agent
        message = f"{author}: {what} on run {self.run.id}{stopped}\n\nTask: {self.run.task}\n"
        settled = settle(self.tree, self.run.id, self.run.base, agent_identity(author), message)
        for escape in settled.escapes:
            self.events.note(escape["what"])
        if settled.commit:
            self.events.note(f"committed the agent's changes as {settled.commit[:10]}")
        # Commits are measured in the common git dir, never through the worktree's (agent-writable) .git file.
        values = candidate_fields(self.store.state_dir, settled.tip or branch_tip(self.tree),
                                  f"refs/heads/{self.run.target}", self.run.base)
        if settled.escapes:
            values["escapes"] = [*self.run.escapes, *settled.escapes]
        return values


def spare_llm_host(pids: list[int]) -> set[int]:
    """The llm host among pids: an llm agent starts it, but it serves every run, so it outlives this one."""
    return listening_on(llm_host_socket(os.environ), pids)


def pending_gates(run: Run, tree: str) -> dict[str, Gate]:
    """A pending result for every gate the run should have (the boundary, the secret scan, each verify command,
    each reviewer), bound to the tree about to be verified: nobody accepts unverified work unasked."""
    kinds = {"boundary": "boundary", SECRETS_GATE: "secrets",
             **{review_gate_name(agent["name"]): "review" for agent in run.reviewers()}}
    return {name: Gate(name=name, kind=kinds.get(name, "command"), status="pending", tree=tree)
            for name in run.expected_gates()}


def reported_gates(run: Run, result: dict[str, Any], tree: str) -> dict[str, Gate]:
    """The gate of the findings an agent whose role reports them answered with (a security agent's), by name;
    {} for any other agent. It is evidence, not a gate to wait for: the agent is not asked again on a new tree."""
    from orchestra.core.gates.review import findings_gate
    role = role_of(run.agent_config)
    if not role.reports_findings or not isinstance(result.get("findings"), list):
        return {}
    block_on = (run.review_config or {}).get("block_on") or DEFAULT_BLOCK_ON
    gate = findings_gate(f"{role.name}-{run.agent}", tree, run.agent, findings_of(result["findings"]),
                         str(result.get("explanation") or ""), block_on)
    return {gate.name: gate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestra-supervisor")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("run_id")
    # follow: a remote run's relay that only takes up its stream again (supervise.relay)
    parser.add_argument("--mode", choices=("run", "watch", "target", "integrate", "follow"), default="run")
    args = parser.parse_args(argv)
    # A run (its agent, its gates) yields the CPU to the conductor's UI when both want it.
    yield_cpu(FLEET_NICENESS)  # its own session (processes.start_supervisor): the session's autogroup too
    store = RunStore(args.state_dir)
    try:
        if is_remote(store, args.run_id):
            from orchestra.core.supervise.relay import Relay
            asyncio.run(Relay(store, args.run_id).main(args.mode))
            return 0
        take_declared(store.run_dir(args.run_id))
        asyncio.run(Supervisor(store, args.run_id).main(args.mode))
    except Exception as error:  # a supervisor bug must leave a visible, recoverable run
        traceback.print_exc()
        Reaper(spare=spare_llm_host).end_all()
        fail_run(store, args.run_id, f"orchestra's supervisor failed: {error}")
        return 1
    return 0


def is_remote(store: RunStore, run_id: str) -> bool:
    try:
        return store.load(run_id).is_remote
    except OrchestraError:
        return False  # the supervisor itself says what is wrong with the record


def take_declared(run_dir: Path) -> None:
    """On a host: the values of the variables the run declares, sent with it and kept in its private state
    (supervise.relay): they join this supervisor's environment, as they would be in the conductor's."""
    try:
        declared = json.loads((run_dir / DECLARED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(declared, dict):
        os.environ.update({k: v for k, v in declared.items() if isinstance(k, str) and isinstance(v, str)})


def fail_run(store: RunStore, run_id: str, message: str) -> None:
    try:
        transition(store, run_id, "failed", message, expect=frozenset({"queued", "working", "waiting"}),
                   supervisor_pid=None)
    except TransitionRefused:
        store.set(run_id, supervisor_pid=None)


def exit_now(status: int) -> None:
    """End the process without the interpreter's teardown: everything is written by now, and a decision
    waiting for this supervisor to stop should not wait tens of milliseconds more for modules to unload."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
