"""The bottom line of keys: one widget that renders the screen's shown bindings as text.

Textual's Footer rebuilds a widget per key whenever bindings may have changed (every focus move, every
refresh_bindings). With runs streaming that happened several times a second, cost a layout and a
full repaint each time, and in Textual 8.2.8 leaked the discarded key widgets (each stays in the
Footer's `compact` data-binding list), so a long session grew slower with every minute. This bar
recomputes one line of text and repaints only when the text changed.

When the keys do not fit the width, the least important are left out whole (never cut in half): a
screen ranks its binding ids, most important first; `?` lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget

PALETTE_HINT = " ▏^p palette"


class KeyBar(Widget):
    """The keys available on this screen, dimmed when they do nothing for the focused item."""

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $foreground; text-wrap: nowrap; }
    """

    def __init__(self, palette: bool = True, ranking: Sequence[str] = ()) -> None:
        """palette: whether ctrl+p opens the palette here (not over a dialog); ranking: binding ids, most
        important first (unranked keys come after them, in the screen's order)."""
        super().__init__()
        self.palette, self.ranking = palette, list(ranking)
        self.items: list[tuple[int, Content]] = []  # (rank, hint) in the screen's order

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, _screen: object = None) -> None:
        items = self.ranked_hints()
        # Content compares its plain text only: a key going from dimmed to available must still repaint.
        if [(rank, look(hint)) for rank, hint in items] != [(rank, look(hint)) for rank, hint in self.items]:
            self.items = items
            self.refresh()

    @property
    def text(self) -> Content:
        """Every shown key, whether or not it fits (tests and `?` read it)."""
        return self.hints()

    def hints(self) -> Content:
        """Every shown key as "key description", in the screen's order (what fits is rendered)."""
        return Content(" ") + Content("  ").join(hint for _rank, hint in self.items)

    def ranked_hints(self) -> list[tuple[int, Content]]:
        """Each shown binding as (rank, "key description"); bindings of one group as "key key description"."""
        items = []
        for position, (members, label) in enumerate(self._groups()):
            ids = [active.binding.id for active in members if active.binding.id in self.ranking]
            rank = min(self.ranking.index(i) for i in ids) if ids else len(self.ranking) + position
            keys = " ".join(self.app.get_key_display(active.binding) for active in members)
            if any(active.enabled for active in members):
                items.append((rank, Content.assemble((keys, "bold $accent"), f" {label}")))
            else:
                items.append((rank, Content.styled(f"{keys} {label}", "$text-muted")))
        return items

    def _groups(self) -> list[tuple[list, str]]:
        """The shown bindings, one per action, those of one group together with the group's description."""
        seen, shown = set(), []
        for active in self.screen.active_bindings.values():
            if active.binding.show and active.binding.action not in seen:
                seen.add(active.binding.action)
                shown.append(active)
        groups = []
        for group, members in groupby(shown, key=lambda active: active.binding.group or active.binding):
            members = list(members)
            label = group.description if isinstance(group, Binding.Group) else members[0].binding.description
            groups.append((members, label))
        return groups

    def fitted(self, width: int) -> Content:
        """The most important hints that fit width (each whole), in the screen's order."""
        kept, used = set(), 1
        for index, (_rank, hint) in sorted(enumerate(self.items), key=lambda item: item[1][0]):
            needed = hint.cell_length + (2 if kept else 0)
            if used + needed <= width:
                kept.add(index)
                used += needed
        return Content(" ") + Content("  ").join(hint for index, (_r, hint) in enumerate(self.items) if index in kept)

    def render(self) -> Content:
        hints = self.fitted(self.size.width)
        # The palette hint sits at the right edge when there is room for it.
        gap = self.size.width - hints.cell_length - len(PALETTE_HINT)
        if gap < 2 or not self.palette:
            return hints
        return Content.assemble(hints, " " * gap, ("▏", "$text-muted"), ("^p", "bold $accent"),
                                (" palette", "$text-muted"))


def look(text: Content | str) -> tuple:
    """What the bar shows: the text and its styles."""
    return (text.plain, tuple(text.spans)) if isinstance(text, Content) else (text, ())
