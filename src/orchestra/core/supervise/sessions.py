"""Interactive sessions: which agents have one, how the agent gets its terminal, and whether a run's is live.

An agent with session = "interactive" runs its CLI's own interactive mode in a pseudo-terminal its
supervisor owns (terminal.py); the conductor attaches to it with `orchestra attach` or the t key.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.agents.presets import first_prompt_typed

from orchestra.core.runs.lifecycle import allowed, refusal
from orchestra.core.runs.run import Run
from orchestra.core.supervise.activity import Activity, ActivityWatch
from orchestra.core.supervise.attach import DETACH_KEY, DETACHED, attach
from orchestra.core.supervise.attach_wire import socket_path

if TYPE_CHECKING:
    from orchestra.core.supervise.supervisor import Supervisor
    from orchestra.core.supervise.terminal import AgentTerminal


def is_interactive(agent: Mapping[str, Any]) -> bool:
    """Whether agent's turns run as an interactive session (shell and cli agents only)."""
    return agent.get("session") == "interactive" and agent.get("kind") in ("shell", "cli")


IDLE_AFTER = 15.0  # seconds an interactive session's screen stays still before it is shown waiting for you
_BOX = " │┃|╭╮╰╯─━"  # what a CLI draws around its input line ("│ > "): a prompt inside it is still a prompt


class SessionWatch(ActivityWatch):
    """An interactive session's activity: a CLI idle at its own prompt (whatever it looks like) waits for the
    conductor, so a still screen reads as waiting rather than stalled."""

    def __init__(self, stall_lines: tuple[str, ...] = ()) -> None:
        super().__init__(unknown_after=IDLE_AFTER, stall_lines=stall_lines)

    def partial(self, text: str, now: float) -> None:
        super().partial(text.strip(_BOX), now)

    def assess(self, now: float) -> Activity:
        activity = super().assess(now)
        if activity.state == "stalled" and activity.reason.startswith("no output for "):
            quiet, _, last = activity.reason.removeprefix("no output for ").partition("; last: ")
            return Activity("waiting", f"idle for {quiet}: talk to it with t" + (f" (last: {last})" if last else ""))
        return activity


def controlling_terminal() -> list[str]:
    """The argv prefix that makes the agent's stdin (the pty) its controlling terminal.

    bubblewrap's --new-session leaves the agent a session leader without one (and so does the supervisor's
    own start_new_session): setsid forks, starts a new session in the child and takes the terminal for it,
    and waits, so the agent's exit status is still the command's. FileNotFoundError when it is missing."""
    setsid = shutil.which("setsid")
    if setsid is None:
        raise FileNotFoundError(2, "an interactive session needs setsid (util-linux) to give the agent its terminal",
                                "setsid")
    return [setsid, "--wait", "--ctty"]


def open_terminal(supervisor: Supervisor, watch: ActivityWatch | None) -> AgentTerminal:
    """The pty of supervisor's interactive session: its screen's new lines are the run's output, the line its
    cursor is on is watched for a prompt."""
    from orchestra.core.supervise.terminal import AgentTerminal  # pyte loads in supervisors that need it

    def lines(texts: list[str]) -> None:
        for text in texts:
            supervisor.agent_line(watch)(text)

    def cursor_line(text: str) -> None:
        if watch is not None:
            watch.partial(text, time.monotonic())
    run = supervisor.run
    typed = " (aider takes no first prompt: give it the task there)" if first_prompt_typed(run.agent_config) else ""
    supervisor.events.note(f"interactive session: talk to it with t in the fleet, or `orchestra attach {run.id}`; "
                           f"the turn ends when it exits{typed}")
    return AgentTerminal(socket_path(supervisor.store.run_dir(run.id)), lines, cursor_line)


def live_session(run: Run | None) -> bool:
    """Whether run's agent is an interactive session that may be talked to now (its socket may still be
    coming up: attaching says so)."""
    return allowed("attach", run) and is_interactive(run.agent_config)


@dataclass(frozen=True)
class Said:
    """How talking to a session went, in a line for the conductor."""

    ok: bool
    message: str


def talk(run: Run, run_dir: Path, detach_key: bytes = DETACH_KEY, stdin: int = 0, stdout: int = 1) -> Said:
    """Attach this terminal to run's live session (run_dir is the run's private directory) until detached."""
    if not live_session(run):
        return Said(False, refusal("attach", run))
    if run.is_remote:
        return talk_at_host(run, detach_key)
    label = f"{run.id} ({run.agent})"
    try:
        how = attach(socket_path(run_dir), label, stdin, stdout, detach_key)
    except OSError:
        return Said(False, f"{run.id}'s session is not listening: it is starting or has just ended. "
                           "Try again in a moment.")
    if how == DETACHED:
        return Said(True, f"Detached from {label}; it goes on (orchestra attach {run.id} to come back).")
    return Said(True, f"{label}'s session ended; its turn ends with it.")


def talk_at_host(run: Run, detach_key: bytes) -> Said:
    """A remote run's session: this terminal goes to its host's attach, over the host's shared ssh connection
    with a terminal of its own (the window size travels with it)."""
    import subprocess
    from orchestra.core.supervise.attach import key_name
    from orchestra.core.supervise.relay import place_of
    from orchestra.core.supervise.ssh import ssh_argv
    place = place_of(run)
    argv = ssh_argv(place, place.remote("attach", run.id, "--detach-key", key_name(detach_key)), tty=True)
    done = subprocess.run(argv)
    if done.returncode == 255:
        return Said(False, f"could not reach {run.host} to talk to {run.id}'s agent (orchestra hosts check "
                           f"{run.host} says why)")
    return Said(done.returncode == 0, f"back from {run.id} ({run.agent}) at {run.host}")
