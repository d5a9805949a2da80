"""Every key of a screen in one list, generated from the live bindings (so remapped keys show as they are)."""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label, Static

from orchestra.ui.key_bar import KeyBar

SCROLL = Binding.Group("Scroll")
Row = tuple[str, str, str, str]  # (binding id, or "" for one without; keys; description; tooltip)
KEY_COLUMN_MAX = 16  # longer key lists wrap within the key column


def describe_bindings(app, screen) -> list[Row]:
    """Every binding a key reaches on screen, each once with the keys that reach it: the screen's, the focused
    widget's (the diff's scrolling keys on the review screen), other widgets' bindings with ids, then the app's.
    A key another binding takes first (q goes back on the review screen, so it does not quit there) is not
    listed again."""
    chain, others = binding_sources(screen)
    keys = claimed_keys(chain, others)
    order = [node for node, _ in chain if node is screen] + [node for node, _ in chain if node not in (screen, app)]
    order += [node for node, _ in others] + [app]
    listed = {node: bindings for node, bindings in [*chain, *others]}
    rows, seen = [], set()
    for node in order:
        # A node's own keys (with ids) before the ones it inherits from Textual (focus, copy, scrolling).
        for binding in sorted(unique_bindings(listed.get(node, BindingsMap())), key=lambda b: not b.id):
            name = binding_name(node, binding)
            if name in seen or not keys.get(name):
                continue
            seen.add(name)
            shown = ", ".join(app.get_key_display(Binding(key, "")) for key in keys[name])
            rows.append((binding.id or "", shown, binding.description, binding.tooltip or ""))
    return rows


def binding_sources(screen) -> tuple[list[tuple], list[tuple]]:
    """The binding chain a key goes through (focused widget up to the app, keymap applied), keeping only what a
    person would look for; then the other widgets of the screen that have bindings with ids."""
    chain = screen._binding_chain
    ends = {screen, screen.app, screen.focused}
    kept = [(node, listed_only(bindings, ids_only=node not in ends)) for node, bindings in chain]
    in_chain = {node for node, _ in chain}
    others, classes = [], set()
    for widget in screen.walk_children():
        if widget in in_chain or type(widget) in classes:
            continue
        if any(binding.id for _key, binding in widget._bindings):
            classes.add(type(widget))
            bindings = widget._bindings.copy()
            bindings.apply_keymap(screen.app._keymap)
            others.append((widget, listed_only(bindings, ids_only=True)))
    return kept, others


def listed_only(bindings: BindingsMap, ids_only: bool) -> BindingsMap:
    """The bindings worth listing: described, not Textual's system ones; for containers (a scroll view
    between the focused pane and the screen), only the ones with ids."""
    kept = BindingsMap()
    kept.key_to_bindings = {
        key: [b for b in found if b.description and not b.system and (b.id or not ids_only)]
        for key, found in bindings.key_to_bindings.items()}
    return kept


def claimed_keys(chain: list[tuple], others: list[tuple]) -> dict[tuple, list[str]]:
    """binding name → the keys that reach it: priority bindings first, from the app down, then the rest
    from the focused widget up (as Textual dispatches a key)."""
    owner: dict[str, tuple] = {}
    passes = [(reversed(chain), True), ([*chain, *others], False)]
    for sources, priority in passes:
        for node, bindings in sources:
            for key, binding in bindings:
                if binding.priority == priority:
                    owner.setdefault(key, binding_name(node, binding))
    keys: dict[tuple, list[str]] = {}
    for key, name in owner.items():
        keys.setdefault(name, []).append(key)
    return keys


def binding_name(node, binding: Binding) -> tuple:
    """What makes bindings one entry: their id, else their node and action (one Binding per key of "up,k")."""
    return (binding.id,) if binding.id else (id(node), binding.action, binding.description)


def unique_bindings(bindings: BindingsMap) -> list[Binding]:
    found, names = [], set()
    for _key, binding in bindings:
        name = (binding.id, binding.action, binding.description)
        if name not in names:
            names.add(name)
            found.append(binding)
    return found


def sheet_lines(rows: list[Row], width: int) -> list[Content]:
    """The rows laid out for width: keys in their own column; description, id and tooltip wrap to the right."""
    key_width = min(KEY_COLUMN_MAX, max((len(keys) for _id, keys, _d, _t in rows), default=4))
    text_width = max(12, width - key_width - 2)
    lines = []
    for binding_id, keys, description, tooltip in rows:
        left = textwrap.wrap(keys, key_width) or [""]
        right = [(line, "") for line in textwrap.wrap(description, text_width)]
        if binding_id:
            if right and len(right[-1][0]) + 2 + len(binding_id) <= text_width:
                right[-1] = (right[-1][0], binding_id)
            else:
                right.append(("", binding_id))
        right += [(line, "$text-muted") for line in textwrap.wrap(tooltip, text_width)]
        for index in range(max(len(left), len(right))):
            key = left[index] if index < len(left) else ""
            text, extra = right[index] if index < len(right) else ("", "")
            if extra == "$text-muted" or not extra:
                tail = [(text, extra)] if extra else [text]
            else:
                tail = [text, (f"{'  ' if text else ''}{extra}", "$text-muted")]
            lines.append(Content.assemble((f"{key:<{key_width}}", "bold $accent"), "  ", *tail))
    return lines


class KeySheet(Widget):
    """The rows, drawn for the width they get (so long descriptions wrap in their own column)."""

    DEFAULT_CSS = "KeySheet { height: auto; }"

    def __init__(self, rows: list[Row], id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows = rows

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(sheet_lines(self.rows, width))

    def render(self) -> Content:
        return Content("\n").join(sheet_lines(self.rows, self.size.width))


class HelpScreen(ModalScreen[None]):
    """A keys cheat sheet for the screen below it; scrolls by keyboard."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background; }  /* solid: a see-through one redrew and dimmed the whole fleet under it on every open and repaint (~80 ms a key while 16 runs stream) */
    HelpScreen > Vertical { width: 90; max-width: 95%; height: 90%;
                            border: round $primary; background: $surface; padding: 0 1 0 2; }
    HelpScreen .title { text-style: bold; color: $primary; margin-bottom: 1; }
    HelpScreen #sheet { height: 1fr; scrollbar-gutter: stable; }
    HelpScreen .hint { color: $text-muted; margin-top: 1; }
    """
    # A priority binding: closed before the next key is read, so a key typed right after reaches the fleet.
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close", tooltip="Close the help",
                priority=True),
        Binding("down,j", "scroll_sheet('down')", "Down", id="help.down", group=SCROLL, tooltip="Scroll down a line"),
        Binding("up,k", "scroll_sheet('up')", "Up", id="help.up", group=SCROLL, tooltip="Scroll up a line"),
        Binding("pagedown,space", "scroll_sheet('page_down')", "Page down", id="help.page_down", group=SCROLL,
                tooltip="Scroll down a page"),
        Binding("pageup", "scroll_sheet('page_up')", "Page up", id="help.page_up", group=SCROLL,
                tooltip="Scroll up a page"),
        Binding("home,g", "scroll_sheet('home')", "Top", id="help.top", show=False, tooltip="Go to the first key"),
        Binding("end,G", "scroll_sheet('end')", "Bottom", id="help.bottom", show=False, tooltip="Go to the last key"),
    ]

    def __init__(self, rows: list[Row]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Keys", classes="title")
            with VerticalScroll(id="sheet", can_focus=False):
                yield KeySheet(self.rows, id="keys")
                yield Static(escape("Remap any key in orchestra.toml under [keymap] by its id, e.g. "
                                    "\"run.accept\" = \"y\". ctrl+p opens the command palette with every action."),
                             classes="hint")
        yield KeyBar(palette=False)

    def action_scroll_sheet(self, how: str) -> None:
        sheet = self.query_one("#sheet", VerticalScroll)
        move = {"down": sheet.scroll_down, "up": sheet.scroll_up, "page_down": sheet.scroll_page_down,
                "page_up": sheet.scroll_page_up, "home": sheet.scroll_home, "end": sheet.scroll_end}[how]
        move(animate=False)

    def action_dismiss(self) -> None:
        if self.is_current:
            self.dismiss(None)
