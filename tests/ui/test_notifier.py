"""Being told when a run needs you: the bell, OSC 9 / OSC 777 (tmux-wrapped), the notify command."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from textual.app import App

from orchestra.core.fleet import Fleet
from orchestra.core.runs.feed import RunUpdate
from orchestra.core.runs.run import Run
from orchestra.core.settings import NotifySettings, settings_path
from orchestra.ui.app import OrchestraApp
from orchestra.ui.notifier import Notifier, notifier_for
from tests.ui.fleet_fixture import CLOCK, build_fleet

ESC, BEL = "\x1b", "\x07"


def a_run(run_id: str, state: str, message: str = "", agent: str = "fixer") -> Run:
    return Run(id=run_id, agent=agent, spec="fix-mean", task="t", branch=f"b/{run_id}", worktree="/nowhere",
               base="0" * 40, target="main", agent_config={}, spec_config=None, state=state, message=message)


async def told(runs: list[Run], settings: NotifySettings | None = None) -> tuple[list[str], App]:
    """What the notifier writes to the terminal when these runs change in one batch."""
    written: list[str] = []
    app = App()
    async with app.run_test() as pilot:
        notifier = Notifier(app, settings or NotifySettings(), write=written.append)
        for run in runs:
            notifier.run_changed(run)
        await pilot.pause()
        await app.workers.wait_for_complete()
    return written, app


async def test_a_run_ready_for_review_rings_and_sends_osc_9_and_777(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    written, _ = await told([a_run("r1", "review")])
    text = "r1 fixer is ready for review"
    assert written == [f"{BEL}{ESC}]9;{text}{BEL}{ESC}]777;notify;orchestra;{text}{BEL}"]


async def test_inside_tmux_the_notifications_pass_through_with_their_escapes_doubled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    written, _ = await told([a_run("r1", "failed", "exit 1")])
    text = "r1 fixer failed: exit 1"
    assert written == [(f"{BEL}{ESC}Ptmux;{ESC}{ESC}]9;{text}{BEL}{ESC}\\"
                        f"{ESC}Ptmux;{ESC}{ESC}]777;notify;orchestra;{text}{BEL}{ESC}\\")]


async def test_agent_text_cannot_inject_escape_sequences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    hostile = f"boom{BEL}{ESC}]52;c;cm0gLXJmIH4K{BEL}\x9b2J\nnext line"
    written, _ = await told([a_run("r1", "failed", hostile)])
    out = written[0]
    assert out.count(ESC) == 2 and out.count(BEL) == 3  # only the two sequences' own, and the bell
    assert "\x9b" not in out and "\n" not in out
    assert "r1 fixer failed: boom ]52;c;cm0gLXJmIH4K 2J next line" in out


async def test_runs_changing_together_make_one_notification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    written, _ = await told([a_run("r1", "review"), a_run("r2", "failed", "x"), a_run("r3", "waiting"),
                             a_run("r4", "working")])
    assert len(written) == 1
    assert f"]9;3 runs need you: r1 review, r2 failed, r3 waiting{BEL}" in written[0]


async def test_switched_off_or_a_run_that_does_not_need_you_says_nothing() -> None:
    written, _ = await told([a_run("r1", "review")], NotifySettings(enabled=False))
    assert written == []
    written, _ = await told([a_run("r1", "working"), a_run("r2", "accepted")])
    assert written == []


async def test_bell_and_desktop_can_be_switched_off_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    written, _ = await told([a_run("r1", "review")], NotifySettings(bell=False))
    assert not written[0].startswith(BEL) and "]9;" in written[0]
    written, _ = await told([a_run("r1", "review")], NotifySettings(desktop=False))
    assert written == [BEL]


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A notify command that writes its arguments and environment to a file."""
    script, out = tmp_path / "record.sh", tmp_path / "record.out"
    script.write_text('#!/bin/sh\nfor a in "$@"; do printf "arg:%s\\n" "$a"; done > "$OUT"\n'
                      'printf "run:%s\\nstate:%s\\nmessage:%s\\n" "$ORCHESTRA_RUN" "$ORCHESTRA_STATE" '
                      '"$ORCHESTRA_MESSAGE" >> "$OUT"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, out


async def test_the_notify_command_gets_the_message_as_an_argument_and_in_its_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, out = recorder(tmp_path)
    monkeypatch.setenv("OUT", str(out))
    hostile = "$(touch pwned); `touch pwned2`"
    await told([a_run("r1", "failed", hostile), a_run("r2", "review")],
               NotifySettings(bell=False, desktop=False, command=(str(script), "--urgent")))
    message = "2 runs need you: r1 failed, r2 review"
    assert out.read_text().splitlines() == ["arg:--urgent", f"arg:{message}", "run:r1 r2", "state:failed review",
                                            f"message:{message}"]
    await told([a_run("r1", "failed", hostile)], NotifySettings(bell=False, desktop=False, command=(str(script),)))
    assert f"arg:r1 fixer failed: {hostile}" in out.read_text()
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


async def test_a_failing_notify_command_is_reported_once(tmp_path: Path) -> None:
    app = App()
    async with app.run_test() as pilot:
        notifier = Notifier(app, NotifySettings(bell=False, desktop=False, command=("false",)), write=print)
        for run_id in ("r1", "r2"):
            notifier.run_changed(a_run(run_id, "review"))
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
        messages = [n.message for n in app._notifications]
    assert messages == ["The notify command exited with status 1. It is not reported again."]


async def test_bad_notify_settings_are_reported_and_the_defaults_used() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("[notify]\nbell = 'yes'\n")
    app = App()
    async with app.run_test() as pilot:
        notifier = notifier_for(app)
        notifier.write = lambda data: None
        notifier.run_changed(a_run("r1", "review"))
        await pilot.pause()
        messages = [n.message for n in app._notifications]
    assert notifier.settings == NotifySettings()
    assert messages == [f"{path}: [notify] bell must be true or false"]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return build_fleet(tmp_path)


async def test_the_app_tells_of_runs_that_change_state_but_not_of_those_already_waiting_at_start(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    app = OrchestraApp(fleet, clock=lambda: CLOCK, watch=False)
    written: list[str] = []
    async with app.run_test(size=(120, 36)) as pilot:
        notifier_for(app).write = written.append
        await pilot.pause()
        assert written == []  # r2 and r3 were in review, r4 failed, before the UI started
        app.apply_updates({"r1": RunUpdate(replace(app.runs["r1"], state="review")),
                           "r2": RunUpdate(replace(app.runs["r2"], message="new gate"))})
        await pilot.pause()
    assert len(written) == 1 and "]9;r1 fixer is ready for review" in written[0]
