"""The bottom line of keys: one widget that renders the screen's shown bindings as text.

Textual's Footer rebuilds a widget per key whenever bindings may have changed (every focus move, every
refresh_bindings). With runs streaming that happened several times a second, cost a layout and a
full repaint each time, and in Textual 8.2.8 leaked the discarded key widgets (each stays in the
Footer's `compact` data-binding list), so a long session grew slower with every minute. This bar
recomputes one line of text and repaints only when the text changed.
"""

from __future__ import annotations

from itertools import groupby

from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget


class KeyBar(Widget):
    """The keys available on this screen, dimmed when they do nothing for the focused item."""

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $foreground; text-wrap: nowrap;
             text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.text: Content | str = ""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, _screen: object = None) -> None:
        text = self.hints()
        if text != self.text:
            self.text = text
            self.refresh()

    def hints(self) -> Content:
        """Each shown binding as "key description"; bindings of one group as "key key description"."""
        parts: list[str | tuple[str, str]] = []
        seen, shown = set(), []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                shown.append(active)
        for group, members in groupby(shown, key=lambda active: active.binding.group or active.binding):
            members = list(members)
            keys = " ".join(self.app.get_key_display(active.binding) for active in members)
            description = group.description if isinstance(group, Binding.Group) else members[0].binding.description
            if any(active.enabled for active in members):
                parts += ["  ", (keys, "bold $accent"), f" {description}"]
            else:
                parts += ["  ", (f"{keys} {description}", "$text-muted")]
        return Content.assemble(" ", *parts[1:])

    def render(self) -> Content:
        hints = self.text if isinstance(self.text, Content) else Content("")
        # The palette hint sits at the right edge when there is room for it.
        gap = self.size.width - hints.cell_length - len(" ▏^p palette")
        if gap < 2:
            return hints
        return Content.assemble(hints, " " * gap, ("▏", "$text-muted"), ("^p", "bold $accent"),
                                (" palette", "$text-muted"))
