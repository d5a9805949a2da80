"""Modal dialogs that return a typed value: a confirmation, a line of text, a new-run request."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from orchestra.core.score import Score

DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 72; max-width: 95%; height: auto; max-height: 90%;
    border: round $primary; background: $surface; padding: 1 2;
}}
{name} .title {{ text-style: bold; color: $primary; margin-bottom: 1; }}
{name} .detail {{ color: $text-muted; margin-bottom: 1; }}
{name} .buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 2; }}
"""


class ConfirmDialog(ModalScreen[bool]):
    """Ask yes or no; y/enter confirm, n/escape cancel."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes", tooltip="Confirm"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no", tooltip="Cancel; nothing changes"),
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

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text; enter submits, escape cancels (returns None)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextPrompt")
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Cancel; nothing changes")]

    def __init__(self, title: str, detail: str, placeholder: str = "", required: bool = False) -> None:
        super().__init__()
        self.title_text, self.detail, self.placeholder, self.required = title, detail, placeholder, required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(escape(self.title_text), classes="title")
            yield Static(escape(self.detail), classes="detail")
            yield Input(placeholder=self.placeholder, id="text")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self.required and not value:
            self.notify("Type something first, or press escape to cancel.", severity="warning")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class NewRunRequest:
    """What the conductor asked to start: a spec or a free-text task, and which agents."""

    spec: str | None
    task: str | None
    agents: tuple[str, ...]


class NewRunDialog(ModalScreen[NewRunRequest | None]):
    """Pick a spec (or type a task) and the agents to run it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NewRunDialog") + """
    NewRunDialog OptionList { height: auto; max-height: 10; margin-bottom: 1; }
    NewRunDialog SelectionList { height: auto; max-height: 10; }
    NewRunDialog Input { margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Cancel; nothing starts"),
        Binding("ctrl+s", "start", "Start", id="dialog.start", tooltip="Start the runs"),
    ]

    def __init__(self, score: Score) -> None:
        super().__init__()
        self.score = score

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("New runs", classes="title")
            yield Static("Pick a spec (enter), or type a free-text task. Then pick agents (space) and "
                         "press ctrl+s or the Start button.", classes="detail")
            yield OptionList(*[Option(f"{escape(s.id)} — {escape(s.intent)}", id=s.id) for s in self.score.specs],
                             Option("free-text task…", id=""), id="specs")
            yield Input(placeholder="task for the agents (only for a free-text task)", id="task")
            yield SelectionList[str](*[(f"{escape(a.name)} ({a.kind}{', ' + a.role if a.role else ''})",
                                        a.name, True) for a in self.score.agents], id="agents")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Start (ctrl+s)", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#specs", OptionList).highlighted = 0
        self.query_one("#task").display = False
        self.query_one("#specs").focus()
        self.preselect()

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

    def on_option_list_option_highlighted(self) -> None:
        self.query_one("#task").display = self.selected_spec() is None
        self.preselect()

    def on_option_list_option_selected(self) -> None:
        self.query_one("#task" if self.selected_spec() is None else "#agents").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.dismiss(None)

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
        self.dismiss(NewRunRequest(spec=spec, task=None if spec else task, agents=agents))

    def action_cancel(self) -> None:
        self.dismiss(None)
