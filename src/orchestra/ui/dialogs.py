"""Modal dialogs that return a typed value: a confirmation, a line of text, a new-run request."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Button, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from orchestra.core.fleet.fleet import MAX_CANDIDATES
from orchestra.core.score import Score
from orchestra.ui.key_bar import KeyBar

DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 72; max-width: 95%; height: auto; max-height: 100%;
    border: round $primary; background: $surface; padding: 1 2;
}}
{name} .title {{ text-style: bold; color: $primary; margin-bottom: 1; }}
{name} .detail {{ color: $text-muted; margin-bottom: 1; }}
{name} .buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 2; }}
"""

# A full-height sheet over the fleet (the stats, autonomy and compare views): a framed column, its title bold.
SHEET_CSS = """
{name} {{ align: center middle; background: $background; }}
{name} > Vertical {{ width: {width}; max-width: 98%; height: 90%;
                    border: round $primary; background: $surface; padding: 0 1 0 2; }}
{name} .title {{ text-style: bold; color: $primary; }}
"""

Answer = TypeVar("Answer")


class Dialog(ModalScreen[Answer], Generic[Answer]):
    """A modal that answers once, and whose deciding keys are priority bindings.

    The App runs a priority binding before it reads the next key, so the dialog is off the screen stack
    by then: keys typed right after the deciding one (typeahead, or a burst over SSH) reach the screen
    below instead of the dialog's input, and a second enter cannot answer twice or close the screen
    below. Buttons (mouse) can still race, hence the check in close().
    """

    def close(self, result: Answer) -> None:
        if self.is_current:
            self.dismiss(result)

    def action_press_focused(self) -> None:
        """enter on a focused button decides now; anywhere else it does what the widget does."""
        if not isinstance(self.focused, Button):
            raise SkipAction()
        self.button_chosen(self.focused)

    def button_chosen(self, button: Button) -> None:
        """Answer for a button (pressed by enter or the mouse)."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.button_chosen(event.button)


class ConfirmDialog(Dialog[bool]):
    """Ask yes or no; y confirms, n/escape cancel, enter presses the focused button (No at first)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes", tooltip="Confirm", priority=True),
        Binding("n,escape", "answer(False)", "No", id="dialog.no", tooltip="Cancel; nothing changes", priority=True),
        Binding("enter", "press_focused", "Choose", id="dialog.choose", priority=True,
                tooltip="Press the focused button"),
        Binding("tab", "app.focus_next", "Other button", id="dialog.next", tooltip="Focus the other button"),
    ]

    def __init__(self, title: str, detail: str, confirm_label: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.detail, self.confirm_label = title, detail, confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(escape(self.title_text), classes="title")
            yield Static(escape(self.detail), classes="detail")
            with Horizontal(classes="buttons"):
                yield Button("No (n)", id="no")
                yield Button(f"{self.confirm_label} (y)", id="yes", variant="warning")
        yield KeyBar(palette=False)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def button_chosen(self, button: Button) -> None:
        self.close(button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.close(answer)


class TextPrompt(Dialog[str | None]):
    """Ask for one line of text; enter submits, escape cancels (returns None)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextPrompt")
    BINDINGS = [
        Binding("enter", "submit", "Confirm", id="dialog.submit", tooltip="Submit the text", priority=True),
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Cancel; nothing changes", priority=True),
    ]

    def __init__(self, title: str, detail: str, placeholder: str = "", required: bool = False) -> None:
        super().__init__()
        self.title_text, self.detail, self.placeholder, self.required = title, detail, placeholder, required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(escape(self.title_text), classes="title")
            yield Static(escape(self.detail), classes="detail")
            yield Input(placeholder=self.placeholder, id="text")
        yield KeyBar(palette=False)

    async def action_submit(self) -> None:
        field = self.query_one("#text", Input)
        # enter is read before the input has taken the keys typed just before it when they came together (a
        # burst over SSH, typeahead): wait until it has, or the text would be cut short. The App reads no
        # further key meanwhile, so keys typed after enter still reach the screen below.
        taken = asyncio.Event()
        field.call_later(taken.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(taken.wait(), 1.0)
        self.submit(field)

    def submit(self, field: Input) -> None:
        value = field.value.strip()
        if self.required and not value:
            self.notify("Type something first, or press escape to cancel.", severity="warning")
            return
        self.close(value)

    def action_cancel(self) -> None:
        self.close(None)


class AgentPicker(SelectionList[str]):
    """A SelectionList whose unticked boxes are blank: Textual draws an X in every box and tells the
    states apart by colour alone, which reads the same with NO_COLOR or 16 colours."""

    BINDINGS = [Binding("space", "select", "Tick/untick", id="dialog.toggle_agent",
                        tooltip="Tick or untick the highlighted agent")]

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        # SelectionList draws each line as: box's left edge, box's inner glyph, right edge, " ", prompt.
        segments = list(strip)
        if selection.value in self.selected or len(segments) < 4 or segments[3].text != " ":
            return strip
        segments[1] = Segment(" " * cell_len(segments[1].text), segments[1].style)
        return Strip(segments, strip.cell_length)


@dataclass(frozen=True)
class NewRunRequest:
    """What the conductor asked to start: a spec or a free-text task, and which agents."""

    spec: str | None
    task: str | None
    agents: tuple[str, ...]
    count: int | None = None  # best-of-N: that many runs, the agents in turn; None: one per agent
    host: str | None = None  # a host of the user's settings; None: the agent's, else wherever a slot is free


def spec_label(spec) -> str:
    """A spec in the new-runs list: its id, its workflow when it has one, its intent (markup escaped)."""
    flow = f" [{escape(spec.workflow)} workflow]" if spec.workflow and spec.workflow != "quick" else ""
    return f"{escape(spec.id)}{flow} — {escape(spec.intent)}"


class NewRunDialog(Dialog[NewRunRequest | None]):
    """Pick a spec (or type a task) and the agents to run it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NewRunDialog") + """
    NewRunDialog > Vertical { padding: 0 1; }
    NewRunDialog .title { margin-bottom: 0; }
    NewRunDialog OptionList { height: auto; max-height: 8; }
    NewRunDialog SelectionList { height: auto; }
    NewRunDialog .buttons { margin-top: 0; }
    NewRunDialog #count { width: 10; }
    NewRunDialog #count-label, NewRunDialog #host-label { color: $text-muted; padding: 1 1 0 0; }
    NewRunDialog #host { width: 16; }
    NewRunDialog #cancel { min-width: 10; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Cancel; nothing starts", priority=True),
        Binding("ctrl+s", "start", "Start", id="dialog.start", tooltip="Start the runs", priority=True),
        Binding("enter", "press_focused", "Choose", id="dialog.choose", show=False, priority=True,
                tooltip="Press the focused button"),
        Binding("tab", "app.focus_next", "Next field", id="dialog.next", tooltip="Focus the next field or button"),
    ]

    def __init__(self, score: Score, hosts: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.score = score
        self.hosts = hosts  # the user's hosts, when there are others than this machine

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New runs", classes="title")
            yield Static("Pick a spec (enter), or type a free-text task. Then pick agents (space) and "
                         "press ctrl+s or the Start button.", classes="detail")
            yield OptionList(*[Option(spec_label(s), id=s.id) for s in self.score.specs],
                             Option("free-text task…", id=""), id="specs")
            yield Input(placeholder="task for the agents (only for a free-text task)", id="task")
            yield AgentPicker(*[(f"{escape(a.name)} ({a.kind}{', ' + a.role if a.role else ''})",
                                        a.name, True) for a in self.score.agents], id="agents")
            with Horizontal(classes="buttons"):
                count = Input(placeholder="runs", id="count", type="integer", max_length=2)
                count.tooltip = ("How many runs: blank, one per ticked agent; N, N runs with the ticked agents in "
                                 "turn (best-of-N: compare them with b)")
                yield Label("best of", id="count-label")
                yield count
                if self.hosts:
                    yield Label("on", id="host-label")
                    where = Select([(name, name) for name in self.hosts], prompt="any host", id="host")
                    where.tooltip = ("Where the runs work: a host of your settings ([[hosts]]); any host: the agent's "
                                     "own, else wherever a slot is free, this machine first")
                    yield where
                yield Button("Cancel", id="cancel")
                yield Button("Start (ctrl+s)", id="start", variant="primary")
        yield KeyBar(palette=False)

    def on_mount(self) -> None:
        self.query_one("#specs", OptionList).highlighted = 0
        self.query_one("#task").display = False
        self.query_one("#specs").focus()
        self.preselect()
        self.call_after_refresh(self.fit_agents)

    def on_resize(self) -> None:
        self.fit_agents()

    def fit_agents(self, tries: int = 0) -> None:
        """Give the agent list the rows the dialog has left, so the buttons stay on screen: the list scrolls
        and keeps its cursor in view. Grown to every agent first, then shrunk by what overflows once laid out."""
        agents = self.query_one("#agents", AgentPicker)
        if tries == 0:
            agents.styles.max_height = agents.option_count + agents.styles.gutter.height
            self.call_after_refresh(self.fit_agents, 1)
            return
        if agents.outer_size.height != agents.option_count + agents.styles.gutter.height and tries < 5:
            self.call_after_refresh(self.fit_agents, tries + 1)  # not laid out at full size yet
            return
        box = self.query_one(Vertical)
        overflow = box.virtual_size.height - box.scrollable_content_region.height
        if overflow > 0:
            agents.styles.max_height = max(3, agents.outer_size.height - overflow)
            self.call_after_refresh(agents.scroll_to_highlight)

    def selected_spec(self) -> str | None:
        specs = self.query_one("#specs", OptionList)
        if specs.highlighted is None:
            return None
        return specs.get_option_at_index(specs.highlighted).id or None

    def preselect(self) -> None:
        """Tick the agents the highlighted spec names (all of them when it names none)."""
        spec_id = self.selected_spec()
        chosen = {a.name for a in self.score.agents_for(self.score.spec(spec_id))} if spec_id else set()
        agents = self.query_one("#agents", SelectionList)
        agents.deselect_all()
        for name in chosen:
            agents.select(name)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id != "specs":
            return  # the agent list moving its cursor
        task = self.query_one("#task")
        if task.display != (self.selected_spec() is None):
            task.display = self.selected_spec() is None
            self.fit_agents()  # the task field takes rows from the agent list
        self.preselect()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "specs":
            self.query_one("#task" if self.selected_spec() is None else "#agents").focus()

    def button_chosen(self, button: Button) -> None:
        if button.id == "start":
            self.action_start()
        else:
            self.close(None)

    def action_start(self) -> None:
        spec = self.selected_spec()
        task = self.query_one("#task", Input).value.strip() or None
        agents = tuple(self.query_one("#agents", SelectionList).selected)
        if spec is None and not task:
            self.notify("Type a task, or pick a spec.", severity="warning")
            return
        if not agents:
            self.notify("Pick at least one agent (space toggles).", severity="warning")
            return
        typed = self.query_one("#count", Input).value.strip()
        count = int(typed) if typed.lstrip("-").isdigit() else None
        if typed and not (count is not None and 1 <= count <= MAX_CANDIDATES):
            self.notify(f"The number of runs is 1 to {MAX_CANDIDATES}, or blank for one per agent.",
                        severity="warning")
            return
        host = self.query_one("#host", Select).value if self.hosts else None
        self.close(NewRunRequest(spec=spec, task=None if spec else task, agents=agents, count=count,
                                 host=host if isinstance(host, str) else None))

    def action_cancel(self) -> None:
        self.close(None)
