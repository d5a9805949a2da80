"""Telling the conductor that runs need them, when they may be looking at another window.

A run that reaches review, waits for input, fails or is interrupted rings the terminal's bell and
sends a desktop notification through the terminal itself (OSC 9, understood by iTerm2, WezTerm,
kitty, Windows Terminal; OSC 777, understood by VTE terminals and foot), so it works over SSH too.
Inside tmux the notification is wrapped in tmux's passthrough (tmux needs `allow-passthrough on`);
the bell is left plain, since tmux flags the window itself. An optional `notify` command from the
user's settings runs as well, in a worker thread, with a timeout.

Runs that change in one batch of updates make one notification: the batch is gathered and sent on
the app's next turn of the event loop. Agent text (a failure's message) reaches the terminal, so
every control character is taken out first: an agent cannot smuggle escape sequences through it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from weakref import WeakKeyDictionary

from textual.app import App

from orchestra.core.runs.run import Run
from orchestra.core.settings import NotifySettings, SettingsError, load_notify_settings

__all__ = ["NEEDS_YOU", "Notifier", "desktop_sequences", "notifier_for", "sanitise", "summary"]

NEEDS_YOU = {"review": "is ready for review", "waiting": "is waiting for input", "failed": "failed",
             "interrupted": "was interrupted"}
TITLE = "orchestra"
COMMAND_TIMEOUT = 10.0  # seconds a notify command may take before it is ended
MAX_TEXT = 240  # desktop notifications show a line or two; a flood of agent text is cut
BEL, ESC, ST = "\x07", "\x1b", "\x1b\\"
# C0 and C1 controls and DEL: any of them could end the sequence early or start a new one.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]+")

_NOTIFIERS: WeakKeyDictionary[App, Notifier] = WeakKeyDictionary()


def notifier_for(app: App) -> Notifier:
    """The app's one notifier, made (and its settings read) on first use."""
    if app not in _NOTIFIERS:
        _NOTIFIERS[app] = Notifier(app)
    return _NOTIFIERS[app]


def sanitise(text: str) -> str:
    """One line of plain text: control characters (escape included) become spaces; cut to MAX_TEXT."""
    line = " ".join(_CONTROLS.sub(" ", text).split())
    return line if len(line) <= MAX_TEXT else line[:MAX_TEXT - 1] + "…"


def summary(runs: list[Run]) -> str:
    """What to tell: one run in full ("r1 fixer failed: …"), several as a list ("3 runs need you: …")."""
    if len(runs) == 1:
        run = runs[0]
        reason = f": {run.message}" if run.message and run.state != "review" else ""
        return sanitise(f"{run.id} {run.agent} {NEEDS_YOU[run.state]}{reason}")
    listed = ", ".join(f"{run.id} {run.state}" for run in runs)
    return sanitise(f"{len(runs)} runs need you: {listed}")


def desktop_sequences(text: str, in_tmux: bool) -> str:
    """OSC 9 and OSC 777 carrying text (already sanitised), each wrapped for tmux when in_tmux."""
    sequences = [f"{ESC}]9;{text}{BEL}", f"{ESC}]777;notify;{TITLE};{text}{BEL}"]
    if in_tmux:  # tmux passes on what sits between `ESC P tmux;` and `ESC \`, its escapes doubled
        sequences = [f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ST}" for sequence in sequences]
    return "".join(sequences)


class Notifier:
    """Gathers the runs that need the conductor and tells them once per batch: bell, desktop, command."""

    def __init__(self, app: App, settings: NotifySettings | None = None,
                 write: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.problem: str | None = None
        if settings is None:
            try:
                settings = load_notify_settings()
            except SettingsError as error:
                settings, self.problem = NotifySettings(), str(error)
        self.settings = settings
        self.write = write or self._write_to_terminal
        self.pending: dict[str, Run] = {}
        self.command_failed = False  # a failing command is reported once, not at every run

    def run_changed(self, run: Run) -> None:
        """Note a run's new state; one that needs the conductor is told at the end of this batch."""
        if self.problem is not None:
            self.app.notify(self.problem, title="Notification settings", severity="warning", timeout=10)
            self.problem = None
        if not self.settings.enabled or run.state not in NEEDS_YOU:
            return
        if not self.pending:
            self.app.call_later(self.flush)
        self.pending[run.id] = run

    def flush(self) -> None:
        """Tell the conductor about every run gathered since the last flush, in one notification."""
        runs, self.pending = list(self.pending.values()), {}
        if not runs:
            return
        text = summary(runs)
        out = BEL if self.settings.bell else ""
        if self.settings.desktop:
            out += desktop_sequences(text, in_tmux=bool(os.environ.get("TMUX")))
        if out:
            self.write(out)
        if self.settings.command:
            self.app.run_worker(lambda: self.run_command(runs, text), thread=True, group="notify-command",
                                exit_on_error=False)

    def run_command(self, runs: list[Run], text: str) -> None:
        """Run the user's notify command with the message as its last argument and in the environment
        (never through a shell: the message holds agent text). Runs in a worker thread."""
        env = {**os.environ, "ORCHESTRA_RUN": " ".join(run.id for run in runs),
               "ORCHESTRA_STATE": " ".join(run.state for run in runs), "ORCHESTRA_MESSAGE": text}
        try:
            done = subprocess.run([*self.settings.command, text], env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=COMMAND_TIMEOUT,
                                  start_new_session=True, check=False)
            said = sanitise(done.stderr.decode(errors="replace"))
            reason = None if done.returncode == 0 else f"exited with status {done.returncode}" + (
                f": {said}" if said else "")
        except subprocess.TimeoutExpired:
            reason = f"took longer than {COMMAND_TIMEOUT:.0f} seconds and was ended"
        except OSError as error:
            reason = f"could not be started ({error.strerror or error})"
        if reason is not None and not self.command_failed:
            self.command_failed = True
            self.app.call_from_thread(self.app.notify, f"The notify command {reason}. It is not reported again.",
                                      title="Notify command", severity="warning", timeout=10)

    def _write_to_terminal(self, data: str) -> None:
        """Raw bytes to the terminal through Textual's driver (its writer thread keeps the order of frames)."""
        driver = self.app._driver
        if driver is not None:
            driver.write(data)
