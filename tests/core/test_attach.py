"""Interactive sessions: an agent in a pty its supervisor owns, its screen in the event log, conductors attaching.

The agent is a small fake interactive CLI (FAKE_CLI, committed in the repository so the sandbox shows it):
it says whether it has a terminal, prints a prompt, answers each line, prints its window size when asked or
resized, and exits on "exit", leaving a file for orchestra to commit.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from orchestra.core.agents.presets import first_prompt_typed, interactive_invocation
from orchestra.core.score.locate import ConfigError
from orchestra.core.fleet import Fleet
from orchestra.core.runs.lifecycle import allowed, refusal
from orchestra.core.runs.run import Run
from orchestra.core.score.load import parse_score
from orchestra.core.supervise.screen import TerminalScreen
from orchestra.core.supervise.sessions import SessionWatch
from orchestra.core.supervise.attach_wire import KEYS, connect, frame, reachable, size_frame, socket_path
from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import PYTHON, SRC, cli, output_lines, score_text, wait_for, wait_output, wait_state

FAKE_CLI = '''\
import os, signal, sys

def size(*_):
    rows, columns = os.get_terminal_size(0)[1], os.get_terminal_size(0)[0]
    os.write(1, f"\\r\\nsize {rows}x{columns}\\r\\n> ".encode())  # not sys.stdout: a signal may come mid-write

with open("/dev/tty", "w") as tty:  # only a process with a controlling terminal can open it
    tty.write("controlling terminal ok\\n")
print("isatty", os.isatty(0), os.isatty(1), "instruction:", os.environ.get("ORCHESTRA_REDIRECT", "none"), flush=True)
signal.signal(signal.SIGWINCH, size)
while True:
    sys.stdout.write("> ")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line or line.strip() == "exit":
        with open("talked.txt", "a") as out:
            out.write("bye\\n")
        break
    if line.strip() == "size":
        size()
    print("you said", line.strip(), flush=True)
'''

SANDBOX = pytest.mark.parametrize("sandbox", ["required", "off"])


class Attacher:
    """A conductor attached over the run's socket: what it was sent, and keys and sizes it sends."""

    def __init__(self, fleet: Fleet, run_id: str, rows: int = 24, columns: int = 80) -> None:
        path = socket_path(fleet.store.run_dir(run_id))
        wait_for(path.exists, message=f"{run_id}'s attach socket")
        self.connection = connect(path)
        self.connection.sendall(size_frame(rows, columns))
        self.received = bytearray()
        self.closed = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while data := self.connection.recv(65536):
                self.received += data
        except OSError:
            pass
        self.closed.set()

    def type(self, text: str) -> None:
        self.connection.sendall(frame(KEYS, text.encode()))

    def resize(self, rows: int, columns: int) -> None:
        self.connection.sendall(size_frame(rows, columns))

    def wait_shown(self, text: str) -> None:
        wait_for(lambda: text.encode() in self.received, timeout=15,
                 message=lambda: f"{text!r} on the attached terminal; it got {bytes(self.received[-300:])!r}")

    def detach(self) -> None:
        self.connection.shutdown(socket.SHUT_RDWR)  # wakes the reader (a close alone would not)
        self.reader.join(5)
        self.connection.close()


def interactive_fleet(repo: Path, make_fleet: MakeFleet, sandbox: str = "off", **settings: object) -> Fleet:
    (repo / "fake_cli.py").write_text(FAKE_CLI)
    git(repo, "add", "fake_cli.py")
    git(repo, "commit", "-q", "-m", "a fake interactive CLI")
    agent = {"command": f"{PYTHON} fake_cli.py", "session": "interactive", **settings}
    return make_fleet(repo, score_text({"talker": agent}, [{"id": "chat", "intent": "talk with the conductor"}],
                                       sandbox=sandbox))


def live(fleet: Fleet, run_id: str) -> bool:
    run = fleet.get(run_id)
    return run.state in ("working", "waiting") and supervisor_alive(run)


@SANDBOX
def test_an_interactive_agent_runs_in_a_pty_the_conductor_talks_to_and_its_exit_ends_the_turn(
        repo: Path, make_fleet: MakeFleet, sandbox: str) -> None:
    fleet = interactive_fleet(repo, make_fleet, sandbox)
    run = fleet.spawn("chat")[0]
    wait_output(fleet, run.id, "isatty True True instruction: none")
    assert "controlling terminal ok" in output_lines(fleet, run.id)  # the pty is its controlling terminal
    assert fleet.get(run.id).sandbox["sandboxed"] is (sandbox == "required")

    conductor = Attacher(fleet, run.id)
    conductor.wait_shown("isatty True True")  # the redraw of the screen comes first
    conductor.type("hello\r")
    conductor.wait_shown("you said hello")
    wait_output(fleet, run.id, "you said hello")  # the pane's tail shows the screen too
    conductor.detach()
    assert live(fleet, run.id)  # detaching leaves it running

    again = Attacher(fleet, run.id)
    again.wait_shown("you said hello")  # the redraw shows the screen as it is
    again.type("exit\r")
    again.closed.wait(15)
    assert again.closed.is_set()  # the session ended: the supervisor let the attacher go
    run = wait_state(fleet, run.id, "review")
    assert run.exit_code == 0
    assert git(repo, "show", f"{run.candidate}:talked.txt") == "bye"
    assert not socket_path(fleet.store.run_dir(run.id)).exists()


def test_two_conductors_attach_at_once_and_each_sees_what_the_other_types(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet)
    run = fleet.spawn("chat")[0]
    first, second = Attacher(fleet, run.id), Attacher(fleet, run.id)
    first.wait_shown("isatty True True")
    second.wait_shown("isatty True True")
    first.type("from the first\r")
    second.wait_shown("you said from the first")
    second.type("from the second\r")
    first.wait_shown("you said from the second")
    first.detach()
    second.type("still here\r")
    second.wait_shown("you said still here")  # one leaving does not end it for the other
    second.detach()
    assert live(fleet, run.id)


def test_the_attachers_window_size_reaches_the_agent(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet)
    run = fleet.spawn("chat")[0]
    conductor = Attacher(fleet, run.id, rows=30, columns=100)
    conductor.wait_shown("isatty True True")
    conductor.type("size\r")
    conductor.wait_shown("size 30x100")
    conductor.resize(40, 120)
    conductor.wait_shown("size 40x120")  # SIGWINCH: the agent learnt of it unasked
    conductor.detach()


def test_stop_ends_an_interactive_session_and_keeps_its_work(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet, "required")
    run = fleet.spawn("chat")[0]
    conductor = Attacher(fleet, run.id)
    conductor.wait_shown("isatty True True")
    (Path(run.worktree) / "draft.txt").write_text("half done\n")

    run = fleet.stop(run.id)

    assert run.state == "stopped"
    conductor.closed.wait(15)
    assert conductor.closed.is_set()
    wait_for(lambda: not supervisor_alive(fleet.get(run.id)), message="the supervisor to end")
    assert git(repo, "show", f"{run.branch}:draft.txt") == "half done"
    assert not socket_path(fleet.store.run_dir(run.id)).exists()


def test_nobody_attached_and_a_flood_of_output_never_blocks_the_agent(repo: Path, make_fleet: MakeFleet) -> None:
    command = f"{PYTHON} -c \"import sys; [print('line', i) for i in range(20000)]; print('all written')\""
    fleet = make_fleet(repo, score_text({"flood": {"command": command, "session": "interactive"}},
                                        [{"id": "chat", "intent": "talk"}], sandbox="off"))
    run = fleet.spawn("chat")[0]
    run = wait_state(fleet, run.id, "review")
    assert "all written" in output_lines(fleet, run.id)


def test_redirect_starts_the_session_again_with_the_instruction(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet)
    run = fleet.spawn("chat")[0]
    conductor = Attacher(fleet, run.id)
    conductor.type("exit\r")
    wait_state(fleet, run.id, "review")

    fleet.redirect(run.id, "say more")

    wait_output(fleet, run.id, "isatty True True instruction: say more")
    conductor = Attacher(fleet, run.id)
    conductor.type("exit\r")
    run = wait_state(fleet, run.id, "review")
    assert git(repo, "show", f"{run.candidate}:talked.txt") == "bye\nbye"


def test_orchestra_attach_relays_a_real_terminal_until_ctrl_close_bracket(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet)
    # Started by a command line that exits at once: the session outlives whoever started it.
    assert cli("-C", str(repo), "spawn", "chat").stdout.strip() == "r1"
    wait_output(fleet, "r1", "isatty True True instruction: none")
    terminal = PtyProgram(["-C", str(repo), "attach", "r1"], rows=33, columns=90)
    terminal.wait_shown("attached to r1 (talker); ctrl-] detaches")
    terminal.wait_shown("isatty True True")
    terminal.write(b"size\r")
    terminal.wait_shown("size 33x90")
    terminal.write(b"\x1d")
    terminal.wait_shown("Detached from r1 (talker)")
    assert terminal.exit_status() == 0
    assert live(fleet, "r1")


def test_orchestra_attach_says_why_when_a_run_has_no_session(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = make_fleet(repo, score_text({"once": "echo done > done.txt"}, [{"id": "work", "intent": "x"}]))
    run = fleet.spawn("work")[0]
    wait_state(fleet, run.id, "review")
    done = cli("-C", str(repo), "attach", run.id)
    assert done.returncode == 1
    assert "works one turn unattended" in done.stderr and 'session = "interactive"' in done.stderr
    bad_key = cli("-C", str(repo), "attach", run.id, "--detach-key", "q")
    assert bad_key.returncode == 2 and "not a control key" in bad_key.stderr


class PtyProgram:
    """`orchestra ARGS` with a pseudo-terminal of its own as its terminal, as a conductor would run it."""

    def __init__(self, args: list[str], rows: int, columns: int) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "PYTHONPATH": SRC}
        self.process = subprocess.Popen([PYTHON, "-m", "orchestra.cli", *args], stdin=slave, stdout=slave,
                                        stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.shown = bytearray()

    def _read(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0.05)
        if ready:
            try:
                self.shown += os.read(self.master, 65536)
            except OSError:
                pass
        return False

    def wait_shown(self, text: str) -> None:
        wait_for(lambda: self._read() or text.encode() in self.shown, timeout=15, interval=0,
                 message=lambda: f"{text!r} on the terminal; it shows {bytes(self.shown[-300:])!r}")

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def exit_status(self) -> int:
        status = self.process.wait(15)
        os.close(self.master)
        return status


def test_the_attach_socket_is_the_owners_alone(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet)
    run = fleet.spawn("chat")[0]
    path = socket_path(fleet.store.run_dir(run.id))
    wait_for(path.exists, message="the attach socket")
    assert path.stat().st_mode & 0o777 == 0o600
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(path))  # and it is a live socket, not a stale file


# --- the score, the presets, the lifecycle and the screen -------------------------------------------------------

def score_error(agent_lines: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_score(f"[[agents]]\nname = \"a\"\n{agent_lines}\n", Path("orchestra.toml"))
    return str(caught.value)


def test_the_session_key_is_checked_with_a_did_you_mean() -> None:
    score = parse_score('[[agents]]\nname = "a"\nkind = "cli"\npreset = "claude"\nsession = "interactive"\n'
                        '[[agents]]\nname = "b"\nkind = "shell"\ncommand = "x"\n', Path("orchestra.toml"))
    assert [agent.session for agent in score.agents] == ["interactive", "oneshot"]  # one-shot stays the default
    assert "invalid session 'interactiv'" in score_error('kind = "shell"\ncommand = "x"\nsession = "interactiv"')
    assert "did you mean 'interactive'?" in score_error('kind = "shell"\ncommand = "x"\nsession = "interactiv"')
    assert "'session' is not allowed for an llm agent" in score_error('kind = "llm"\nmodel = "m"\nsession = "oneshot"')
    assert "its session must be \"oneshot\"" in score_error('kind = "cli"\npreset = "claude"\nrole = "review"\n'
                                                            'session = "interactive"')


@pytest.mark.parametrize(("preset", "first", "absent"), [
    ("claude", ["claude", "--permission-mode", "acceptEdits", "do it"], "-p"),
    ("codex", ["codex", "--sandbox", "workspace-write"], "exec"),
    ("gemini", ["gemini", "--approval-mode", "auto_edit", "--prompt-interactive", "do it"], "--prompt"),
    ("opencode", ["opencode", "--prompt", "do it"], "run"),
])
def test_each_preset_runs_its_own_interactive_mode_with_the_task_as_first_prompt(
        preset: str, first: list[str], absent: str) -> None:
    config = {"name": "a", "kind": "cli", "preset": preset, "session": "interactive"}
    argv = list(interactive_invocation(config, "do it", {}).argv)
    assert [arg for arg in argv if arg in first] == first and absent not in argv
    assert argv[-1] == "do it"
    again = interactive_invocation(config, "do it", {}, redirect="now this").argv
    assert again[-1] == "now this" and ({"--continue", "resume", "--resume"} & set(again))


def test_aider_interactive_asks_the_conductor_and_takes_no_first_prompt() -> None:
    config = {"name": "a", "kind": "cli", "preset": "aider", "model": "openai/gpt-4.1", "session": "interactive"}
    argv = interactive_invocation(config, "do it", {}).argv
    assert argv[0] == "aider" and "--yes-always" not in argv and not any("do it" in arg for arg in argv)
    assert first_prompt_typed(config)


def test_talk_is_allowed_only_on_a_live_interactive_run_and_says_why_not() -> None:
    def run(state: str, session: str) -> Run:
        return Run(id="r3", agent="claude1", spec=None, task="t", branch="b", worktree="/w", base="0", target="main",
                   agent_config={"kind": "cli", "session": session}, spec_config=None, state=state)
    assert allowed("attach", run("working", "interactive")) and allowed("attach", run("waiting", "interactive"))
    assert not allowed("attach", run("working", "oneshot"))
    assert "works one turn unattended" in refusal("attach", run("working", "oneshot"))
    assert not allowed("attach", run("review", "interactive"))
    assert "session has ended" in refusal("attach", run("review", "interactive"))
    assert "Redirect it" in refusal("attach", run("review", "interactive"))


def test_the_screen_log_gives_new_lines_once_even_when_the_screen_scrolls() -> None:
    screen = TerminalScreen(rows=3, columns=20)
    screen.feed(b"one\r\ntwo\r\n> ")
    assert screen.changed_lines() == ["one", "two", ">"]
    screen.feed(b"hi\r\nyou said hi\r\n> ")  # scrolls "one" off the top
    assert screen.changed_lines() == ["> hi", "you said hi", ">"]
    assert screen.changed_lines() == []
    screen.feed(b"\x1b[2;1H\x1b[31mRED\x1b[0m")  # a line rewritten in place
    assert screen.changed_lines() == ["RED said hi"]
    redraw = TerminalScreen(rows=3, columns=20)
    redraw.feed(screen.redraw())
    assert redraw.lines() == screen.lines() and redraw.screen.buffer[1][0].fg == "red"


def test_fewer_rows_lose_the_blank_lines_below_the_cursor_first() -> None:
    screen = TerminalScreen(rows=6, columns=20)
    screen.feed(b"one\r\ntwo\r\n> ")
    screen.resize(4, 20)
    assert screen.lines() == ["one", "two", ">", ""]
    screen.resize(2, 20)
    assert screen.lines() == ["two", ">"]  # then from the top, keeping the cursor's line


def test_an_idle_session_waits_for_the_conductor_rather_than_stalling() -> None:
    watch = SessionWatch()
    watch.line("Here is the fix.", 0.0)
    watch.partial("│ >                    │", 0.0)  # a prompt inside the box a CLI draws around its input
    assert watch.assess(0.5).state == "working"
    assert watch.assess(4.0).state == "waiting"
    busy = SessionWatch()
    busy.line("✻ Compiling", 0.0)
    assert busy.assess(5.0).state == "working"
    idle = busy.assess(20.0)
    assert (idle.state, idle.reason) == ("waiting", "idle for 20s: talk to it with t (last: ✻ Compiling)")


def test_an_interactive_session_outlasts_the_agents_timeout(repo: Path, make_fleet: MakeFleet) -> None:
    fleet = interactive_fleet(repo, make_fleet, timeout=0.5)
    run = fleet.spawn("chat")[0]
    conductor = Attacher(fleet, run.id)
    conductor.wait_shown("isatty True True")
    started = fleet.get(run.id).started
    wait_for(lambda: time.time() > started + 1.5, message="the agent's timeout to have passed, twice over")
    conductor.type("exit\r")
    run = wait_state(fleet, run.id, "review", "failed")
    assert run.state == "review", run.message


def test_a_socket_path_longer_than_a_unix_address_still_binds_and_connects(tmp_path: Path) -> None:
    run_dir = tmp_path / ("deep-" * 30)
    run_dir.mkdir()
    path = socket_path(run_dir)
    assert len(str(path)) > 108
    with socket.socket(socket.AF_UNIX) as server, reachable(path) as address:
        server.bind(address)
        server.listen()
        with connect(path) as client:
            client.sendall(b"hi")
            assert server.accept()[0].recv(2) == b"hi"
