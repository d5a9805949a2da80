"""The orchestra app: wiring between the fleet on disk, the screens, and the conductor's keys."""

from __future__ import annotations

import asyncio
import difflib
import gc
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.events import Key
from textual.notifications import Notification
from textual.screen import Screen

from orchestra.core.base.errors import OrchestraError
from orchestra.core.base.procs import calm_collector
from orchestra.core.runs.feed import FleetFeed, RunUpdate
from orchestra.core.fleet import Fleet
from orchestra.core.git.repo import data_home
from orchestra.core.runs.lifecycle import refusal
from orchestra.core.settings import SettingsError, load_settings, save_theme
from orchestra.core.runs.run import DECIDED_STATES, Run
from orchestra.core.runs.workflow import paused
from orchestra.ui.actions import RunActions
from orchestra.ui.view_actions import ViewActions
from orchestra.ui.fleet_screen import FleetScreen
from orchestra.ui.themes import DEFAULT_DARK, FALLBACK_THEME, load_themes

# Toasts cover panes: an announcement stays only long enough to be read (the pane keeps showing the state).
INFO_TIMEOUT = 4
ALERT_TIMEOUT = 6


class OrchestraApp(RunActions, ViewActions, App[int]):
    """Renders the fleet from its state on disk; keys call fleet use-cases in worker threads."""

    TITLE = "orchestra"
    ENABLE_COMMAND_PALETTE = True
    NOTIFICATION_TIMEOUT = INFO_TIMEOUT
    BINDINGS = [
        *RunActions.RUN_BINDINGS,
        Binding("n", "new_run", "New", id="fleet.new", tooltip="Start runs: pick a spec or type a task, pick agents"),
        Binding("G", "autonomy", "Autonomy", id="app.autonomy", show=False,
                tooltip="Autonomy per spec and agent: levels, track records, suggested promotions; grant or revoke"),
        Binding("b", "compare", "Compare", id="app.compare", show=False,
                tooltip="The focused run's group (best-of-N) side by side, ranked on evidence; choose one"),
        Binding("y", "history", "History", id="app.history", show=False,
                tooltip="Every decision in the ledger, newest first: filter, open one's evidence, revert an accept"),
        Binding("question_mark,f1", "help", "Keys", id="app.help", tooltip="List every key"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Close the UI; agents keep working"),
    ]

    def __init__(self, fleet: Fleet, demo: bool = False, clock: Callable[[], float] = time.time,
                 watch: bool = True) -> None:
        super().__init__()
        self.fleet, self.demo, self.clock, self.live = fleet, demo, clock, watch
        self.runs: dict[str, Run] = {}
        # Archived (decided) runs get no pane in the first frame: their output is read when H shows them.
        self.feed = FleetFeed(fleet.store, defer=lambda run: run.state in DECIDED_STATES)
        self.keymap: dict[str, str] = dict(fleet.score.keymap) if fleet.score else {}
        self._pidfds: dict[str, int] = {}
        self._stop_watching = asyncio.Event()
        self.remember_theme = False  # the theme set at start-up is not a choice to remember
        # Before mount, so the stylesheet is built once with the chosen theme.
        self.theme_problems = self.setup_themes()

    # -- start-up ---------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        """The fleet, with a pane for every run on disk: the very first frame shows the whole fleet."""
        notice = None
        if self.demo:
            from orchestra.core.onboarding.demo import demo_notice
            notice = demo_notice(self.fleet.repo.root)
        # The score's target as written: whether that branch exists is checked after the first frame
        # (follow_target), which shows "?" for one that does not.
        title = self.fleet_title((self.fleet.score.target if self.fleet.score else None) or self.target_name())
        # fleet.runs() marks runs whose supervisor died as failed before they are shown.
        initial = self.feed.initial(self.fleet.runs())
        now = self.clock()
        for run_id, update in initial.items():
            self.runs[run_id] = update.run
        # The screen makes panes only for the runs it shows: decided runs are archived and cost nothing here.
        return FleetScreen(title, notice, runs=[update.run for update in initial.values()],
                           events={run_id: update.events for run_id, update in initial.items()
                                   if run_id not in self.feed.deferred}, now=now, feed=self.feed)

    def on_mount(self) -> None:
        self.ticker = self.set_interval(1.0, self.tick, pause=True)
        if self.theme_problems:
            self.notify("\n".join(map(str, self.theme_problems)), title="Theme problems", severity="warning",
                        timeout=15)
        self.set_keymap(self.keymap)

    def on_ready(self) -> None:
        """The first frame is on the terminal: start following the fleet on disk."""
        self.remember_theme = True
        for run in self.runs.values():
            self.watch_supervisor(run)
        self.update_ticker()
        if self.live:
            self.watch_runs()
            self.resume_watchers()
        if self.keymap:
            self.call_later(self.check_keymap)
        self.call_later(self.calm_garbage_collector)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        # What start-up imported lives as long as the app: frozen before the first frame, no collection walks
        # it (a full collection while the first frame was built took 30 ms of a 50-run fleet's first paint).
        calm_collector(freeze=True)
        return super().run(*args, **kwargs)

    @staticmethod
    def calm_garbage_collector() -> None:
        """Keep full collections short while many runs stream.

        Rendering streamed output makes many short-lived objects; with the default thresholds a full
        collection (which walks every object: Textual's, the imported modules', the fleet's) ran more
        than once a second and took 100-300 ms, stalling keys. Objects alive after the first frame are
        collected once and frozen out of later collections, and the youngest generation is collected less
        often (procs.CALM_GC). Collections paused for the start-up (cli.main) resume here."""
        gc.collect()
        calm_collector(freeze=True)
        gc.enable()

    def fleet_title(self, target: str) -> str:
        return f"{self.fleet.repo.root.name} → {target}"

    def target_name(self) -> str:
        try:
            return self.fleet.target_branch()
        except OrchestraError:
            return "?"

    def setup_themes(self) -> list[str]:
        """Register the theme files and pick one: the user's last choice, else the score's, else the default."""
        themes, problems = load_themes()
        for theme in themes or [FALLBACK_THEME]:
            self.register_theme(theme)
        try:
            saved = load_settings().theme
        except SettingsError as error:
            saved, problems = None, [*problems, str(error)]
        wanted = saved or (self.fleet.score.theme if self.fleet.score else None) or DEFAULT_DARK
        names = {theme.name for theme in themes}
        if wanted not in names and wanted not in self.available_themes:
            problems = [*problems, f"theme {wanted!r} was not found; {self.theme_choices(names)}"]
            wanted = DEFAULT_DARK if DEFAULT_DARK in names else (themes or [FALLBACK_THEME])[0].name
        self.start_with_theme(wanted)
        return [str(problem) for problem in problems]

    def start_with_theme(self, name: str) -> None:
        """Use theme name from the start, as Textual sets up its default theme in App.__init__.

        Setting `self.theme` here would also queue a second parse of the whole stylesheet and a restyle of
        every widget, run before the first frame (App._watch_theme's refresh_css: 10 ms of a 50-run first
        paint). Nothing is parsed or styled yet, so the theme's classes, colour filter and variables are set
        directly, and the stylesheet is first parsed with them."""
        self.set_reactive(App.theme, name)
        dark = self.current_theme.dark
        self.update_classes({f"-theme-{name}": True, "-dark-mode": dark, "-light-mode": not dark}, update=False)
        self._refresh_truecolor_filter(self.ansi_theme)
        self.stylesheet.set_variables(self.get_css_variables())

    def theme_choices(self, own: set[str]) -> str:
        """Every theme name the app accepts: orchestra's, then Textual's built-in ones."""
        builtin = sorted(set(self.available_themes) - own - {FALLBACK_THEME.name})
        return f"orchestra themes: {', '.join(sorted(own))}; also Textual's: {', '.join(builtin)}"

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Save screenshots in orchestra's data directory: Textual's default, ~/Downloads, is often missing
        on a server. Textual's notification names the file saved."""
        return super().deliver_screenshot(filename, path or str(screenshot_dir()), time_format)

    def watch_theme(self, theme: str) -> None:
        """Remember a theme the conductor picks (in the command palette) for every repository."""
        if self.remember_theme:
            self.store_theme(theme)

    @work(thread=True, exclusive=True, group="settings")
    def store_theme(self, theme: str) -> None:
        try:
            save_theme(theme)
        except SettingsError as error:
            self.call_from_thread(self.notify, str(error), title="Theme not remembered", severity="warning",
                                  timeout=10)

    def check_keymap(self) -> None:
        """Warn about keymap entries naming no binding (after the first paint: it imports every screen)."""
        known = {b.id for b in self._bindings_with_ids()}
        unknown = [key for key in self.keymap if key not in known]
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.notify(f"[keymap] {key!r} is not a binding id{hint}; `?` lists them.", severity="warning", timeout=15,
                        markup=False)  # plain text: "[keymap]" is not a style tag

    def _bindings_with_ids(self) -> list[Binding]:
        from orchestra.ui.dialogs import AgentPicker, ConfirmDialog, NewRunDialog, TextPrompt
        from orchestra.ui.help_screen import HelpScreen
        from orchestra.ui.diff_view import DiffView
        from orchestra.ui.autonomy_screen import AutonomyScreen
        from orchestra.ui.compare_screen import CompareScreen
        from orchestra.ui.history_detail import HistoryDetail
        from orchestra.ui.history_screen import HistoryScreen
        from orchestra.ui.review_screen import ReviewScreen
        classes = (OrchestraApp, FleetScreen, ReviewScreen, HelpScreen, ConfirmDialog, TextPrompt, NewRunDialog,
                   DiffView, AgentPicker, HistoryScreen, HistoryDetail, AutonomyScreen, CompareScreen)
        return [b for cls in classes for b in cls.BINDINGS if isinstance(b, Binding) and b.id]

    def empty_message(self) -> str:
        specs = ", ".join(spec.id for spec in self.fleet.score.specs) if self.fleet.score else ""
        return ("No runs yet.\n\nPress [b]n[/b] to start runs" + (f" of a spec ({specs})" if specs else "")
                + ",\nor run `orchestra spawn SPEC` in another terminal: they appear here.")

    # -- following the fleet on disk ----------------------------------------------------------
    @work(exclusive=True, group="watch-runs")
    async def watch_runs(self) -> None:
        from watchfiles import awatch  # with anyio, ~30 ms: loaded after the first paint

        runs_dir = self.fleet.store.runs_dir
        runs_dir.mkdir(parents=True, exist_ok=True)
        # Catch up on anything that changed between the first read and the watch starting. Quietly: a run
        # that reached review or failed meanwhile is shown so in its pane, and a burst of toasts at start-up
        # would hide the panes.
        every_run = {str(path) for path in runs_dir.iterdir()}
        self.apply_updates(await asyncio.to_thread(self.feed.changed, every_run), announce=False)
        # No filter: the default one drops every path under a `.git` directory, which is where runs live.
        async for changes in awatch(runs_dir, watch_filter=None, debounce=200, step=50,
                                    stop_event=self._stop_watching):
            paths = {path for _change, path in changes}
            updates = await asyncio.to_thread(self.feed.changed, paths)
            self.apply_updates(updates)

    def apply_updates(self, updates: dict[str, RunUpdate], announce: bool = True) -> None:
        """Show what changed on disk; announce runs whose state changed (unless told not to)."""
        if not updates:
            return  # nothing to redraw
        fleet_screen = self.fleet_screen()
        changed, events, states_changed = [], {}, False
        for run_id, update in updates.items():
            if update.run is not None:
                before = self.runs.get(run_id)
                self.runs[run_id] = update.run
                changed.append(update.run)
                if before is None or before.state != update.run.state:
                    states_changed = True
                if announce and before is not None and before.state != update.run.state:
                    self.announce(update.run)
                self.watch_supervisor(update.run)
            elif run_id in self.runs:
                changed.append(self.runs[run_id])
            events[run_id] = update.events
        if fleet_screen is not None:
            fleet_screen.show_runs(changed, events, self.clock())
        if is_review(self.screen) and self.screen.run.id in updates:
            update = updates[self.screen.run.id]
            if update.run is not None:
                self.screen.show_run(update.run)
            self.screen.add_events(update.events)
        if getattr(self.screen, "FOLLOWS_RUNS", False):  # a view computed from the runs (the comparison)
            self.screen.runs_changed(changed)
        self.update_ticker()
        if states_changed:
            self.refresh_bindings()  # which keys apply depends on the focused run's state only

    def _unnotify(self, notification: Notification, refresh: bool = True) -> None:
        """Forget a notification (Textual calls this when its toast expires or is clicked away), and repaint
        where the toasts were once it is gone.

        Textual 8.2.8 can leave an expired toast drawn over the panes: its toast rack is invisible, so a refresh
        of the rack marks the compositor's map of the screen out of date, and the layout after the toast's
        removal is compared with that map, which no longer says where the toast was; nothing repaints its
        area until something lays the screen out again (tests/ui/test_stale_paint.py)."""
        screen = self.screen
        racks = screen.query("ToastRack")  # Textual's container of the screen's toasts
        area = racks.first().region if racks else None  # where the toasts are now, this one still among them
        super()._unnotify(notification, refresh)
        if area:
            self.call_after_refresh(screen.refresh, area)

    def announce(self, run: Run) -> None:
        """Tell the conductor when a run needs them."""
        from orchestra.ui.notifier import notifier_for  # bell, desktop notification, the user's notify command
        notifier_for(self).run_changed(run)
        if run.state == "review" and paused(run):
            self.notify(f"{run.id}: {run.message}", timeout=INFO_TIMEOUT, markup=False)  # what the workflow waits for
        elif run.state == "review":
            self.notify(f"{run.id} {run.agent} is ready for review", timeout=INFO_TIMEOUT)
        elif run.state == "failed":
            self.notify(f"{run.id} {run.agent} failed: {run.message}", severity="error", timeout=ALERT_TIMEOUT)
        elif run.state == "interrupted":
            self.notify(f"{run.id} {run.agent} was interrupted: {run.message}", severity="warning",
                        timeout=ALERT_TIMEOUT)
        elif run.state == "waiting":
            self.notify(f"{run.id} {run.agent} is waiting for input — {run.message}\n"
                        f"O opens it interactively; d redirects it.", severity="warning", timeout=15)

    def watch_supervisor(self, run: Run) -> None:
        """Learn without polling when a working run's supervisor dies: a pidfd becomes readable."""
        if not run.is_active or not run.supervisor_pid or run.id in self._pidfds:
            return
        try:
            fd = os.pidfd_open(run.supervisor_pid)
        except (OSError, AttributeError):
            return
        self._pidfds[run.id] = fd
        asyncio.get_running_loop().add_reader(fd, self.supervisor_exited, run.id)

    def supervisor_exited(self, run_id: str) -> None:
        fd = self._pidfds.pop(run_id)
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self.reconcile(run_id)

    @work(thread=True, group="reconcile")
    def reconcile(self, run_id: str) -> None:
        self.fleet.get(run_id)  # marks the run failed if it died mid-work; the feed shows the change

    @work(thread=True, group="resume")
    def resume_watchers(self) -> None:
        self.fleet.resume_watchers()

    def tick(self) -> None:
        self.update_ticker()

    def update_ticker(self) -> None:
        """Tick once a second only while some run works: an idle fleet redraws nothing."""
        screen = self.fleet_screen()
        active = screen.tick(self.clock()) if screen is not None else False
        if active:
            self.ticker.resume()
        else:
            self.ticker.pause()

    def fleet_screen(self) -> FleetScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, FleetScreen):
                return screen
        return None

    # -- navigation ----------------------------------------------------------------------------
    def open_review(self, run_id: str) -> None:
        if run_id in self.runs:
            from orchestra.ui.review_screen import ReviewScreen  # Pygments and the diff view load on first use
            self.push_screen(ReviewScreen(self.runs[run_id]))

    def action_help(self) -> None:
        # Built once per kind of screen and kept installed: the keys do not change while the UI runs,
        # and composing the sheet again each time cost ~50-200 ms while runs stream.
        # Per kind of screen and of focused widget: the focused widget's keys are listed too.
        name = f"help-{type(self.screen).__name__}-{type(self.screen.focused).__name__}"
        if not self.is_screen_installed(name):
            from orchestra.ui.help_screen import HelpScreen, describe_bindings  # loaded on the first ?, not at start
            self.install_screen(HelpScreen(describe_bindings(self, self.screen)), name)
        self.push_screen(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self.run_commands(screen)

    def on_key(self, event: Key) -> None:
        """Say why a dimmed run key does nothing when it is pressed."""
        action = self.unavailable_action_for(event.key)
        if action is not None:
            run = self.current_run()
            reason = refusal(action, run) if run else "No run is focused: start one with n."
            self.notify(reason, severity="warning", timeout=5)
            event.stop()

    async def action_quit(self) -> None:
        self._stop_watching.set()
        self.exit(0)


def screenshot_dir() -> Path:
    """$XDG_DATA_HOME/orchestra/screenshots, made if needed; the current directory when it cannot be."""
    folder = data_home() / "screenshots"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path.cwd()
    return folder


def is_review(screen: Screen) -> bool:
    """Whether screen reviews one run (checked by name so the review screen loads only when used)."""
    return type(screen).__name__ == "ReviewScreen"
