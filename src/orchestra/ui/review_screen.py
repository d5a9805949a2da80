"""Review one run: its diff, the evidence of its gates, its spec, and everything the agent said."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.markup import escape, to_content
from textual.screen import Screen
from textual.widgets import Log, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from orchestra.core.git.diffparse import ParsedDiff, parse_diff
from orchestra.core.runs.run import Run
from orchestra.ui.diff_view import DiffView
from orchestra.ui.format import (diffstat_markup, duration, event_line, gate_label, gate_markup, state_markup,
                                 usage_markup)
from orchestra.ui.key_bar import KeyBar


class ReviewScreen(Screen):
    """Everything needed to decide on one run; the run keys (a, r, d, s) work here too."""

    DEFAULT_CSS = """
    ReviewScreen { layout: vertical; overflow: hidden hidden; }
    ReviewScreen #title { height: 1; background: $panel; padding: 0 1; }
    ReviewScreen TabbedContent { height: 1fr; }
    ReviewScreen TabPane { height: 1fr; padding: 0; }
    ReviewScreen #files { width: 34; max-width: 40%; border-right: solid $panel-lighten-2; }
    ReviewScreen DiffView { width: 1fr; }
    ReviewScreen .section { padding: 0 1; }
    ReviewScreen #output { height: 1fr; }
    """
    BINDINGS = [
        # Priority: the App leaves the screen before it reads the next key (keys typed right after reach
        # the fleet, and a second escape cannot pop the fleet screen).
        Binding("escape,q", "back", "Fleet", id="review.back", tooltip="Back to the fleet", priority=True),
        Binding("1", "tab('diff')", "Diff", id="review.diff", tooltip="Show the diff"),
        Binding("2", "tab('gates')", "Gates", id="review.gates", tooltip="Show gate results and failures"),
        Binding("3", "tab('spec')", "Spec", id="review.spec", tooltip="Show the spec: intent and boundaries"),
        Binding("4", "tab('output')", "Output", id="review.output", tooltip="Show the agent's whole output"),
        Binding("f", "focus_files", "Files", id="review.files", tooltip="Focus the list of changed files"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.shown_candidate: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with TabbedContent(initial="diff"):
            with TabPane("Diff", id="diff"), Horizontal():
                yield OptionList(id="files")
                yield DiffView()
            with TabPane("Gates", id="gates"), VerticalScroll(id="gates-scroll"):
                yield Static(id="gate-detail", classes="section")
            with TabPane("Spec", id="spec"), VerticalScroll(id="spec-scroll"):
                yield Static(id="spec-detail", classes="section")
            with TabPane("Output", id="output"):
                yield Log(id="output-log", max_lines=200_000)
        yield KeyBar()

    def on_mount(self) -> None:
        self.show_run(self.run)
        self.load_output()
        self.query_one(DiffView).focus()

    def show_run(self, run: Run) -> None:
        """Render the run's header, gates and spec; reload the diff when the candidate changed."""
        self.run = run
        self.query_one("#title", Static).update(
            f"[b]{escape(run.id)}[/b] {escape(run.agent)} · {escape(run.spec or 'task')}  {state_markup(run)}  "
            f"{duration(run.elapsed(time.time()))}  {diffstat_markup(run)}  "
            + (f"{usage}  " if (usage := usage_markup(run)) else "")
            + f"[$text-muted]{(run.candidate or '')[:10]} → {escape(run.target)}[/]")
        self.query_one("#gate-detail", Static).update(gate_details(run))
        self.query_one("#spec-detail", Static).update(spec_details(run))
        if run.candidate != self.shown_candidate:
            self.shown_candidate = run.candidate
            self.load_diff(run)

    @work(thread=True, exclusive=True, group="diff")
    def load_diff(self, run: Run) -> None:
        text = self.app.fleet.diff(run) if run.candidate else ""
        parsed = parse_diff(text)
        self.app.call_from_thread(self.show_diff, parsed)

    def show_diff(self, parsed: ParsedDiff) -> None:
        files = self.query_one("#files", OptionList)
        files.clear_options()
        files.add_options([Option(f"{escape(f.path)} [$success]+{f.added}[/] [$error]−{f.removed}[/]", id=f.path)
                           for f in parsed.files])
        self.query_one(DiffView).set_diff(parsed)

    @work(thread=True, exclusive=True, group="output")
    def load_output(self) -> None:
        events, _ = self.app.fleet.store.read_events(self.run.id)
        self.app.call_from_thread(self.show_output, plain_lines(events))

    def show_output(self, lines: list[str]) -> None:
        log = self.query_one("#output-log", Log)
        log.clear()
        log.write_lines(lines)

    def add_events(self, events: list[dict]) -> None:
        lines = plain_lines(events)
        if lines:
            self.query_one("#output-log", Log).write_lines(lines)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.query_one(DiffView).scroll_to_file(event.option.id)
            self.query_one(DiffView).focus()

    def action_back(self) -> None:
        if self.is_current:
            self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        # Focus must follow into the shown pane, or focus left in the hidden one switches it back.
        target = {"diff": DiffView, "gates": "#gates-scroll", "spec": "#spec-scroll", "output": "#output-log"}[tab]
        self.query_one(target).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id and not (self.focused and event.pane in self.focused.ancestors):
            self.call_after_refresh(self.action_tab, event.pane.id)

    def action_focus_files(self) -> None:
        self.query_one(TabbedContent).active = "diff"
        self.query_one("#files").focus()


def plain_lines(events: list[dict]) -> list[str]:
    """Events as the plain lines the output log shows."""
    return [to_content(line).plain for line in map(event_line, events) if line is not None]


def gate_details(run: Run) -> str:
    """What the agent did to git (if it left its branch), then each gate with its status, tree and failures."""
    parts = [*git_warnings(run)]
    if not run.gates:
        return "\n".join([*parts, "[$text-muted]No gate results yet: gates run when the agent finishes.[/]"])
    for gate in run.gates.values():
        label = gate_label(gate, run.tree)
        tree = f"tree {gate.tree[:10]}" if gate.tree else ""
        stale = " [$warning](stale: the worktree changed since)[/]" if label == "stale" else ""
        parts.append(f"{gate_markup(gate, run.tree, detailed=True)}  [$text-muted]{tree}[/]{stale}")
        parts.extend(f"  [$warning]⚠ {escape(warning)}[/]" for warning in gate.warnings)
        if gate.failures:
            title = "outside the boundary:" if gate.kind == "boundary" else "failing:"
            parts.append(f"  [$error]{title}[/]")
            parts.extend(f"    {escape(name)}" for name in gate.failures)
        if gate.kind == "command" and gate.status == "failed" and gate.output_tail:
            parts.append("  [$text-muted]last lines of output:[/]")
            parts.extend(f"    [$text-muted]{escape(line)}[/]" for line in gate.output_tail[-15:])
        parts.append("")
    return "\n".join(parts)


def git_warnings(run: Run) -> list[str]:
    """The agent's moves outside its branch, the commits kept for it, a missing sandbox and a kept worktree,
    as warnings."""
    lines = [f"[$warning]⚠ {escape(item['what'])}[/]" for item in run.escapes]
    if run.sandbox and not run.sandbox.get("sandboxed"):
        lines.append(f"[$warning]⚠ not sandboxed: {escape(run.sandbox.get('why_not') or 'the sandbox is off')}; "
                     "the agent could read and write what you can[/]")
    if run.kept:
        lines.append(f"[$warning]⚠ worktree kept: {escape(run.kept['reason'])}[/]")
        lines.extend(f"    {escape(path)}" for path in run.kept.get("paths", [])[:20])
    return [*lines, ""] if lines else []


def spec_details(run: Run) -> str:
    """The task and, for a spec, its boundaries and verification commands; then any redirects."""
    lines = [f"[b]{'Spec ' + escape(run.spec) if run.spec else 'Free-text task'}[/b]", "", escape(run.task), ""]
    spec = run.spec_config or {}
    if spec:
        lines.append(f"[b]allow[/b]  {escape(', '.join(spec.get('allow') or ['(everything)']))}")
        lines.append(f"[b]deny[/b]   {escape(', '.join(spec.get('deny') or ['(nothing)']))}")
        lines.append("[b]verify[/b]")
        lines.extend(f"  {escape(c['name'])}: {escape(c['command'])}" for c in spec.get("verify", []))
    if run.redirects:
        lines += ["", "[b]Redirects[/b]"] + [f"  {n}. {escape(text)}" for n, text in enumerate(run.redirects, 1)]
    lines += ["", f"[$text-muted]branch {escape(run.branch)} · base {run.base[:10]} · worktree {escape(run.worktree)}[/]"]
    return "\n".join(lines)
