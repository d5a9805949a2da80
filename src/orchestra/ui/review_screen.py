"""Review one run: its diff with the findings on their lines, the findings list, the evidence of its gates,
its spec, and everything the agent said."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Input, Log, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option, OptionDoesNotExist

from orchestra.core.base.findings import Finding
from orchestra.core.git.diffparse import ParsedDiff, parse_diff
from orchestra.core.policy import evidence, feedback_status, open_findings, readiness
from orchestra.core.runs.run import Run
from orchestra.ui.diff_pane import DiffPane
from orchestra.ui.diff_view import DiffView
from orchestra.ui.findings import feedback_markup, is_comment
from orchestra.ui.findings_list import FindingsList
from orchestra.ui.format import behind_text, diffstat_text, duration, evidence_text, state_text, usage_text
from orchestra.ui.key_bar import KeyBar
from orchestra.ui.gate_detail import GateDetail
from orchestra.core.runs.workflow import read_plan
from orchestra.ui.review_text import gate_details, plain_lines, spec_details

__all__ = ["ReviewScreen", "gate_details", "plain_lines", "spec_details"]

PARSED_KEPT = 8  # parsed diffs kept across review screens (a 20,000-line one is a few MB)
_PARSED: dict[tuple[str, str, str | None], ParsedDiff] = {}

READY_TO_ACCEPT = Content.styled("✔ ready: a accepts", "b $text-success")
NOT_READY = Content.styled("not ready: why in 2 Gates", "$text-warning")
# The keys the bar shows first when it cannot show them all (at 80 columns: these, up to ?).
KEY_RANKING = ("run.accept", "run.reject", "run.redirect", "review.back", "diff.next_finding", "review.comment",
               "app.help", "review.select", "diff.search", "diff.split", "run.stop", "run.shell", "fleet.new")
TABS = {"diff": "Diff", "gates": "Gates", "spec": "Spec", "output": "Output", "findings": "Findings"}


class ReviewScreen(Screen):
    """Everything needed to decide on one run; the run keys (a, r, d, s) work here too, and d sends the
    findings selected here (and your comments) back with the instruction."""

    DEFAULT_CSS = """
    ReviewScreen { layout: vertical; overflow: hidden hidden; }
    ReviewScreen #title { height: 1; background: $panel; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ReviewScreen #evidence { height: 1; background: $panel; padding: 0 1; text-wrap: nowrap;
                             text-overflow: ellipsis; }
    ReviewScreen TabbedContent { height: 1fr; }
    ReviewScreen TabPane { height: 1fr; padding: 0; }
    ReviewScreen #files { width: 34; max-width: 30%; border-right: solid $panel-lighten-2; text-wrap: nowrap;
                          text-overflow: ellipsis; }
    ReviewScreen DiffView { width: 1fr; }
    ReviewScreen DiffPane { width: 1fr; }
    ReviewScreen .section { padding: 0 1; }
    ReviewScreen #output { height: 1fr; }
    ReviewScreen #feedback { height: auto; max-height: 50%; padding: 0 1; border-bottom: solid $panel-lighten-2; }
    """
    BINDINGS = [
        Binding("c", "comment", "Comment", id="review.comment",
                tooltip="Comment on the line under the cursor; your comments go with the next redirect (d)"),
        Binding("x", "select", "Select", id="review.select",
                tooltip="Select the finding under the cursor to send back with the next redirect (d); again: unselect"),
        Binding("X", "select_all", "Select all", id="review.select_all", show=False,
                tooltip="Select every open finding to send back; when all are selected, unselect them all"),
        # Priority: the App leaves the screen before it reads the next key (keys typed right after reach
        # the fleet, and a second escape cannot pop the fleet screen).
        Binding("escape,q", "back", "Fleet", id="review.back", tooltip="Back to the fleet", priority=True),
        Binding("u", "uncomment", "Uncomment", id="review.uncomment", show=False,
                tooltip="Remove your comment under the cursor (before it is sent)"),
        Binding("1", "tab('diff')", "Diff", id="review.diff", show=False, tooltip="Show the diff"),
        Binding("2", "tab('gates')", "Gates", id="review.gates", show=False,
                tooltip="Show gate results: failures, reviewers' verdicts and explanations"),
        Binding("3", "tab('spec')", "Spec", id="review.spec", show=False,
                tooltip="Show the spec: intent and boundaries"),
        Binding("4", "tab('output')", "Output", id="review.output", show=False,
                tooltip="Show the agent's whole output"),
        Binding("5", "tab('findings')", "Findings", id="review.findings", show=False,
                tooltip="List every open finding, P0 first, and what became of those you sent back; "
                        "enter shows one in the diff"),
        Binding("f", "focus_files", "Files", id="review.files", show=False, tooltip="Focus the list of changed files"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.shown_candidate: str | None = None
        self.findings: list[Finding] = []
        self.selected: dict[str, Finding] = {}  # finding id → finding, to send back with the next redirect
        self.parsed: ParsedDiff | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="evidence")
        with TabbedContent(initial="diff"):
            with TabPane(self.tab_label("diff"), id="diff"), Horizontal():
                yield OptionList(id="files")
                yield DiffPane()
            with TabPane(self.tab_label("gates"), id="gates"), VerticalScroll(id="gates-scroll"):
                yield GateDetail(id="gate-detail", classes="section")
            with TabPane(self.tab_label("spec"), id="spec"), VerticalScroll(id="spec-scroll"):
                yield Static(id="spec-detail", classes="section")
            with TabPane(self.tab_label("output"), id="output"):
                yield Log(id="output-log", max_lines=200_000)
            with TabPane(self.tab_label("findings"), id="findings"), Vertical():
                yield Static(id="feedback")
                yield FindingsList(id="findings-list")
        yield KeyBar(ranking=KEY_RANKING)

    def tab_label(self, tab: str) -> str:
        """A tab's title with the key that shows it; the Findings tab says how many, and how many are selected."""
        number = list(TABS).index(tab) + 1
        label = f"[$text-muted]{number}[/] {TABS[tab]}"
        if tab == "findings" and self.findings:
            chosen = f" · [$text-accent]✓ {len(self.selected)} selected[/]" if self.selected else ""
            label += f" ({len(self.findings)}{chosen})"
        return label

    def on_mount(self) -> None:
        self.show_run(self.run)
        self.load_output()
        self.query_one(DiffView).focus()

    # -- the run, its diff and its findings ----------------------------------------------------------------
    def show_run(self, run: Run) -> None:
        """Render the run's header, evidence, gates, spec and findings; reload the diff when the candidate
        changed."""
        self.run = run
        usage = usage_text(run)
        self.query_one("#title", Static).update(Content.assemble(
            (run.id, "b"), f" {run.agent}{f' @{run.host}' if run.host else ''} · {run.spec or 'task'}  ",
            state_text(run),
            f"  {duration(run.elapsed(time.time()))}  ", diffstat_text(run), "  ", *((usage, "  ") if usage else ()),
            (f"{(run.candidate or '')[:10]} → {run.target}", "$text-muted"), behind_text(run)))
        self.show_evidence()
        self.query_one("#gate-detail", GateDetail).show_run(run, self.app.fleet.store.run_dir(run.id))
        plan = read_plan(self.app.fleet.store.run_dir(run.id)) if run.workflow else None  # small, local
        self.query_one("#spec-detail", Static).update(spec_details(run, plan))
        self.show_findings(open_findings(run))
        if run.candidate != self.shown_candidate:
            self.shown_candidate = run.candidate
            self.load_diff(run)

    def show_evidence(self) -> None:
        """The evidence line, after "ready" when a accepts at once."""
        run = self.run
        head = None if run.state != "review" else READY_TO_ACCEPT if readiness(run).ready else NOT_READY
        if not run.gates:
            text = Content.styled("no gate results yet", "$text-muted")
        else:
            text = evidence_text(evidence(run), max(20, self.size.width - 2) if self.size.width else None, head)
        self.query_one("#evidence", Static).update(text)

    def on_resize(self) -> None:
        self.show_evidence()

    def show_findings(self, findings: list[Finding]) -> None:
        """Show the open findings in the diff and the Findings tab; selections of findings gone are dropped."""
        changed = [f.id for f in findings] != [f.id for f in self.findings]
        self.findings = findings
        open_ids = {f.id for f in findings}
        self.selected = {key: value for key, value in self.selected.items() if key in open_ids}
        if changed and self.parsed is not None:
            self.query_one(DiffView).set_findings(findings)
        status = feedback_status(self.run)
        feedback = self.query_one("#feedback", Static)
        feedback.display = status is not None
        if status is not None:
            feedback.update(feedback_markup(status))
        self.show_selection()

    def show_selection(self) -> None:
        """Marks and counts of the selected findings, in the diff, the list and the tab's title."""
        if self.query_one(TabbedContent).active == "findings":
            self.list_findings()
        self.query_one(DiffView).set_selected(self.selected)
        self.query_one(TabbedContent).get_tab("findings").label = self.tab_label("findings")

    def list_findings(self) -> None:
        """Fill the Findings tab's list (only while it shows: hundreds of findings need not slow the diff)."""
        status = feedback_status(self.run)
        remaining = {f.id for f in status.remaining} if status else set()
        self.query_one(FindingsList).show_findings(self.findings, self.selected, remaining)

    @property
    def selected_findings(self) -> list[Finding]:
        """The findings selected to send back, in the policy's order (P0 first)."""
        return [finding for finding in self.findings if finding.id in self.selected]

    def selection_sent(self) -> None:
        """The redirect carried the selection: start afresh."""
        self.selected = {}
        self.show_selection()

    @work(thread=True, exclusive=True, group="diff")
    def load_diff(self, run: Run) -> None:
        # A candidate's diff against its merge base never changes: the last few are kept, parsed, so reopening
        # a review (or going back and forth between runs) paints at once.
        key = (str(self.app.fleet.repo.root), run.merge_base or run.base, run.candidate)
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = parse_diff(self.app.fleet.diff(run) if run.candidate else "")
            if run.candidate:
                _PARSED[key] = parsed
                while len(_PARSED) > PARSED_KEPT:
                    _PARSED.pop(next(iter(_PARSED)))
        self.app.call_from_thread(self.show_diff, parsed)

    def show_diff(self, parsed: ParsedDiff) -> None:
        self.parsed = parsed
        files = self.query_one("#files", OptionList)
        files.clear_options()
        files.add_options([Option(f"{escape(f.path)} [$success]+{f.added}[/] [$error]−{f.removed}[/]", id=f.path)
                           for f in parsed.files])
        self.query_one(DiffView).set_diff(parsed, self.findings)

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

    # -- what the cursor is on ------------------------------------------------------------------------------
    def finding_in_focus(self) -> Finding | None:
        """The finding under the cursor: the diff's, or the one highlighted in the Findings tab."""
        tab = self.query_one(TabbedContent).active
        if tab == "findings":
            return self.query_one(FindingsList).highlighted_finding()
        return self.query_one(DiffView).finding_at_cursor() if tab == "diff" else None

    def line_in_focus(self) -> tuple[str, int] | None:
        """(path, new-side line) to comment on: the diff's line under the cursor, or the highlighted finding's."""
        tab = self.query_one(TabbedContent).active
        if tab == "findings":
            finding = self.query_one(FindingsList).highlighted_finding()
            return (finding.path, finding.line_start) if finding and finding.path and finding.line_start else None
        line = self.query_one(DiffView).line_at_cursor() if tab == "diff" else None
        return (line.path, line.new_no) if line is not None and line.new_no is not None else None

    # -- keys -------------------------------------------------------------------------------------------------
    def action_comment(self) -> None:
        place = self.line_in_focus()
        if place is None:
            self.notify("Put the cursor on a line of the new version (a + or an unchanged line) to comment on it.",
                        severity="warning", timeout=5)
            return
        self.app.ask_comment(self.run, *place)

    def action_uncomment(self) -> None:
        finding = self.finding_in_focus()
        if finding is None or not is_comment(finding):
            self.notify("No comment of yours under the cursor (} moves to the next note).", severity="warning",
                        timeout=5)
            return
        self.app.change_comments("uncomment", self.run.id, self.app.fleet.uncomment, self.run.id, finding.id)

    def action_select(self) -> None:
        finding = self.finding_in_focus()
        if finding is None:
            self.notify("No finding under the cursor: } moves to the next one.", severity="warning", timeout=5)
        elif is_comment(finding):
            self.notify("Your comments go with the next redirect anyway; u removes one.", timeout=5)
        else:
            if self.selected.pop(finding.id, None) is None:
                self.selected[finding.id] = finding
            self.show_selection()

    def action_select_all(self) -> None:
        selectable = {f.id: f for f in self.findings if not is_comment(f)}
        self.selected = {} if selectable and selectable.keys() == self.selected.keys() else selectable
        self.show_selection()

    def on_findings_list_chosen(self, event: FindingsList.Chosen) -> None:
        self.action_tab("diff")
        if not self.query_one(DiffView).jump_to_finding(event.finding.id):
            self.notify("That finding is not in the diff shown.", severity="warning", timeout=4)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "files" and event.option.id:
            self.query_one(DiffView).scroll_to_file(event.option.id)
            self.query_one(DiffView).focus()

    def on_diff_view_file_scrolled(self, event: DiffView.FileScrolled) -> None:
        """The file list follows the diff: the file shown is highlighted (and scrolled to) in it."""
        files = self.query_one("#files", OptionList)
        try:
            files.highlighted = files.get_option_index(event.path or "")
        except OptionDoesNotExist:
            pass  # a note on the whole change, before the first file

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # q and esc go back, but not while the search bar's input has the keys: q is typed, esc closes it.
        return not (action == "back" and isinstance(self.focused, Input))

    def action_back(self) -> None:
        if self.query_one(DiffPane).search_open:
            self.query_one(DiffPane).close_search()
            return
        if self.is_current:
            self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        # Focus must follow into the shown pane, or focus left in the hidden one switches it back.
        target = {"diff": DiffView, "gates": "#gates-scroll", "spec": "#spec-scroll", "output": "#output-log",
                  "findings": FindingsList}[tab]
        self.query_one(target).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "findings":
            self.list_findings()
        if event.pane.id and not (self.focused and event.pane in self.focused.ancestors):
            self.call_after_refresh(self.action_tab, event.pane.id)

    def action_focus_files(self) -> None:
        self.query_one(TabbedContent).active = "diff"
        self.query_one("#files").focus()
