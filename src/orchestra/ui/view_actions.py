"""The fleet's views and its groups, mixed into the App: stats (palette), autonomy (G), history (y), the
comparison of a group's candidates (b) and the integration of a spec's parts (palette "Integrate").

Each view loads when asked for, not at start."""

from __future__ import annotations

from textual import work

from orchestra.core.runs.run import group_of


class ViewActions:
    """Mixed into the App beside RunActions: open a view, or act on the focused run's group."""

    def action_stats(self) -> None:
        from orchestra.ui.stats_screen import StatsScreen  # loaded when asked for, not at start
        self.push_screen(StatsScreen(self.fleet))

    def action_autonomy(self) -> None:
        from orchestra.ui.autonomy_screen import AutonomyScreen  # loaded when asked for, not at start
        if not isinstance(self.screen, AutonomyScreen):
            self.push_screen(AutonomyScreen(self.fleet))

    def action_compare(self, run_id: str | None = None) -> None:
        """The focused run's (or run_id's) group side by side (best-of-N): its candidates ranked on evidence."""
        run = self.runs.get(run_id) if run_id else self.current_run()
        if run is None:
            self.notify("Focus a run of a group first (best-of-N: `n`, then more than one run).", severity="warning")
            return
        group = group_of(run)
        if sum(1 for other in self.runs.values() if group_of(other) == group) < 2:
            self.notify(f"{run.id} was started alone: there is nothing to compare it with. Start several runs of a "
                        "spec at once (`n`, with a number of runs) to compare them.", severity="warning")
            return
        from orchestra.ui.compare_screen import CompareScreen  # loaded when asked for, not at start
        self.push_screen(CompareScreen(self.fleet, list(self.runs.values()), group))

    def action_integrate(self, run_id: str | None = None) -> None:
        """Build (or build again) the integration candidate of the parts in the focused run's group."""
        run = self.runs.get(run_id) if run_id else self.current_run()
        if run is None or not (run.part_of or run.integration is not None):
            self.notify("Focus a run of a spec's parts ([[specs.parts]]) first.", severity="warning")
            return
        self.notify(f"Integrating the parts of {run.spec} ({run.group})…", timeout=3)
        self.build_integration(group_of(run))

    @work(thread=True, group="decide")
    def build_integration(self, group: str) -> None:
        from orchestra.core.fleet.integration import integrate
        done, built = self.attempt("integrate", integrate, self.fleet, group)
        if done:
            self.call_from_thread(self.notify, f"Built integration {built.id} of group {group}: its gates run now",
                                  timeout=8)

    def action_history(self) -> None:
        from orchestra.ui.history_screen import HistoryScreen  # loaded when asked for, not at start
        if not isinstance(self.screen, HistoryScreen):  # from the palette over the history: it is open already
            self.push_screen(HistoryScreen(self.fleet))
