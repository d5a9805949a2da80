"""Every key in one list, generated from the live bindings (so remapped keys show as they are)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Label, Static


def describe_bindings(app, screen) -> list[tuple[str, str, str, str]]:
    """(id, keys, description, tooltip) for every binding with an id: the screen's, its widgets' (e.g. the
    diff's keys on the review screen), then the app's."""
    rows, seen = [], set()
    keymap = getattr(app, "keymap", {})
    for node in (screen, *widgets_with_bindings(screen), app):
        for _key, binding in node._bindings:
            if not binding.id or binding.id in seen:
                continue
            seen.add(binding.id)
            raw = keymap.get(binding.id) or ",".join(k for k, b in node._bindings if b.id == binding.id)
            keys = ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in raw.split(","))
            rows.append((binding.id, keys, binding.description, binding.tooltip))
    return rows


def widgets_with_bindings(screen) -> list:
    """One widget of each class on screen that has bindings with ids of its own."""
    found, classes = [], set()
    for widget in screen.walk_children():
        if type(widget) not in classes and any(binding.id for _key, binding in widget._bindings):
            classes.add(type(widget))
            found.append(widget)
    return found


class HelpScreen(ModalScreen[None]):
    """A keys cheat sheet for the screen below it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen > Vertical { width: 90; max-width: 95%; height: auto; max-height: 90%;
                            border: round $primary; background: $surface; padding: 1 2; overflow-y: auto; }
    HelpScreen .title { text-style: bold; color: $primary; margin-bottom: 1; }
    HelpScreen .hint { color: $text-muted; margin-top: 1; }
    """
    # A priority binding: closed before the next key is read, so a key typed right after reaches the fleet.
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close", tooltip="Close the help",
                        priority=True)]

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(keys) for _id, keys, _d, _t in self.rows), default=4)
        lines = []
        for binding_id, keys, desc, tip in self.rows:
            lines.append(f"[b $accent]{escape(keys):<{width}}[/]  {escape(desc):<12} "
                         f"[$text-muted]{escape(binding_id)}[/]")
            lines.append(f"{'':<{width}}  [$text-muted]{escape(tip)}[/]")
        with Vertical():
            yield Label("Keys", classes="title")
            yield Static("\n".join(lines))
            yield Static(escape("Remap any key in orchestra.toml under [keymap] by its id, e.g. \"run.accept\" = \"y\". "
                                "ctrl+p opens the command palette with every action."), classes="hint")

    def action_dismiss(self) -> None:
        if self.is_current:
            self.dismiss(None)
