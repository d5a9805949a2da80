"""The t key (run.attach): talk to a run's live interactive agent from the fleet, and come back to it.

A real supervisor runs the fake interactive CLI of tests/core/test_attach.py. Headless, Textual cannot
suspend, so the app's suspend is replaced by one that hands over nothing; the terminal the conductor types
on is a pty pair, driven from a thread (the relay holds the app's thread until the detach key, as the real
suspended UI does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import termios
import threading
import time
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.supervise import sessions
from orchestra.ui.app import OrchestraApp
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_output, wait_state
from tests.core.test_attach import Attacher, interactive_fleet, live
from tests.ui.waiting import wait_for


class Keyboard:
    """The conductor's terminal: a pty whose far end the relay uses, typed on and read from a thread."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.shown = bytearray()
        self.done = threading.Event()

    def converse(self, *steps: tuple[bytes, str]) -> None:
        """For each step, type its keys and wait (up to 15 s) until the terminal shows its text."""
        thread = threading.Thread(target=self._converse, args=(steps,), daemon=True)
        thread.start()

    def _converse(self, steps: tuple[tuple[bytes, str], ...]) -> None:
        for keys, expected in steps:
            os.write(self.master, keys)
            deadline = time.monotonic() + 15
            while expected.encode() not in self.shown and time.monotonic() < deadline:
                if select.select([self.master], [], [], 0.1)[0]:
                    self.shown += os.read(self.master, 65536)
        os.write(self.master, b"\x1d")  # ctrl-]: back to the fleet
        self.done.set()

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def keyboard(monkeypatch: pytest.MonkeyPatch) -> Keyboard:
    board = Keyboard()
    real_talk = sessions.talk
    monkeypatch.setattr(sessions, "talk", lambda run, run_dir: real_talk(run, run_dir, stdin=board.slave,
                                                                          stdout=board.slave))
    yield board
    board.close()


def app_on(fleet: Fleet) -> OrchestraApp:
    app = OrchestraApp(fleet, watch=False)
    app.suspend = contextlib.nullcontext  # type: ignore[method-assign]  # headless: nothing to hand over
    return app


async def test_t_talks_to_the_live_agent_and_ctrl_close_bracket_comes_back_to_the_fleet(
        repo: Path, make_fleet: MakeFleet, keyboard: Keyboard) -> None:  # noqa: F811 -- the fixture
    fleet = interactive_fleet(repo, make_fleet)
    run = fleet.spawn("chat")[0]
    wait_output(fleet, run.id, "isatty True True instruction: none")
    app = app_on(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one(f"#run-{run.id}").focus()
        await pilot.pause()
        assert app.check_action("attach", ()) is True
        keyboard.converse((b"", "attached to r1 (talker); ctrl-] detaches"), (b"hello\r", "you said hello"))
        await pilot.press(app.keymap.get("run.attach", "t"))
        await wait_for(pilot, keyboard.done.is_set, "the conductor to detach")
        await wait_for(pilot, lambda: any("Detached from r1 (talker)" in n.message for n in app._notifications),
                       "the fleet to say the agent goes on")
    assert b"you said hello" in keyboard.shown
    assert live(fleet, run.id)  # detached, and the UI has quit: the agent still runs
    conductor = Attacher(fleet, run.id)
    conductor.wait_shown("you said hello")
    conductor.type("exit\r")
    wait_state(fleet, run.id, "review")


async def test_t_is_dimmed_on_a_one_shot_run_and_says_why(
        repo: Path, make_fleet: MakeFleet) -> None:  # noqa: F811 -- the fixture
    fleet = make_fleet(repo, score_text({"once": "echo started; sleep 120"}, [{"id": "work", "intent": "x"}]))
    run = fleet.spawn("work")[0]
    wait_output(fleet, run.id, "started")
    app = app_on(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        app.screen.query_one(f"#run-{run.id}").focus()
        await pilot.pause()
        assert app.check_action("attach", ()) is None
        await pilot.press("t")
        await wait_for(pilot, lambda: any("works one turn unattended" in n.message for n in app._notifications),
                       "the refusal to be shown")
    assert fleet.get(run.id).state == "working"  # a one-shot agent that works: only its session is missing
