"""The fleet's compact list: one line per run (id, agent, spec, state, evidence, age), groups under a heading."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from orchestra.core.policy import evidence
from orchestra.core.runs.run import Run
from orchestra.core.runs.run import group_of
from orchestra.ui.fleet_filter import group_label
from orchestra.ui.format import evidence_text, gates_text, state_text

EVIDENCE_WIDTH = 40  # the list's evidence is the pane's, shortened to this many columns


class RunList(OptionList):
    """The shown runs, one option each (its id is the run's); the highlighted run is the one keys act on."""

    DEFAULT_CSS = """
    RunList { height: 1fr; border: none; padding: 0; background: $surface; text-wrap: nowrap;
              text-overflow: ellipsis; }
    RunList:focus { border: none; }
    """

    def __init__(self) -> None:
        super().__init__(id="run-list")
        self.shown: list[tuple] = []  # what the options say, so an unchanged fleet is not rebuilt

    def show(self, runs: list[Run], sizes: dict[str, int], now: float) -> None:
        """List runs in order, a heading over each group of more than one; keep the highlighted run."""
        lines = [(run.id, run_line(run, now)) for run in runs]
        headings = {group_of(run): group_label(group_of(run), sizes.get(group_of(run), 1)) for run in runs}
        # Content compares by text alone: the key holds each line's styles too.
        shown = tuple((run_id, line.plain, tuple(line.spans)) for run_id, line in lines)
        key = (shown, tuple(sorted(headings.items())))
        if key == self.shown:
            return
        self.shown = key
        current = self.highlighted_run_id()
        options: list[Option] = []
        seen: set[str] = set()
        for run, (_run_id, line) in zip(runs, lines):
            group = group_of(run)
            if headings[group] and group not in seen:
                options.append(Option(Content.styled(headings[group], "b $text-muted"), disabled=True))
            seen.add(group)
            options.append(Option(line, id=run.id))
        self.set_options(options)
        self.highlight_run(current or (runs[0].id if runs else None))

    def highlighted_run_id(self) -> str | None:
        if self.highlighted is None or not self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def highlight_run(self, run_id: str | None) -> None:
        if run_id is None:
            return
        try:
            self.highlighted = self.get_option_index(run_id)
        except Exception:  # the run is no longer listed: the first run takes its place
            first = next((i for i in range(self.option_count) if not self.get_option_at_index(i).disabled), None)
            self.highlighted = first


def run_line(run: Run, now: float) -> Content:
    """One run as a line: id, agent, spec, state, evidence (or a rejected run's reason), age."""
    shown = evidence_text(evidence(run), EVIDENCE_WIDTH) if run.gates else gates_text(run)
    if run.state == "rejected":
        reason = (run.decision or {}).get("reason")
        shown = Content.styled(reason or "no reason given", "$text-muted")
    agent = f"{run.agent}@{run.host}" if run.host else run.agent  # where it works, when not here
    return Content.assemble((f"{run.id:<5}", "b"), f" {agent:<10} {run.spec or 'task':<12} ", state_text(run),
                            "  ", shown, "  ", (age(now - run.created), "$text-muted"))


def age(seconds: float) -> str:
    """How long ago a run started, coarsely ("just now", "5m ago", "3h ago", "2d ago"): the list is not
    redrawn each second."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"
