"""A key bar for screens with more keys than an 80-column line holds: the least important keys are left
out whole, never cut in half; `?` lists them all."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from textual.binding import Binding
from textual.content import Content

from orchestra.ui.key_bar import KeyBar

__all__ = ["FittedKeyBar"]

PALETTE_HINT = " ▏^p palette"


class FittedKeyBar(KeyBar):
    """A KeyBar that shows the keys of `ranking` (binding ids, most important first) before the others, as
    many as fit its width, in the screen's own order."""

    def __init__(self, ranking: Sequence[str]) -> None:
        super().__init__()
        self.ranking = list(ranking)
        self.items: list[tuple[int, Content]] = []  # (rank, hint) in the screen's order

    def hints(self) -> Content:
        """Every shown key, ranked; the line as a whole (what changed is what the bar compares)."""
        items = []
        for position, (members, label) in enumerate(self._groups()):
            ids = [active.binding.id for active in members if active.binding.id in self.ranking]
            rank = min(self.ranking.index(i) for i in ids) if ids else len(self.ranking) + position
            keys = " ".join(self.app.get_key_display(active.binding) for active in members)
            enabled = any(active.enabled for active in members)
            items.append((rank, Content.assemble((keys, "bold $accent"), f" {label}") if enabled
                          else Content.styled(f"{keys} {label}", "$text-muted")))
        self.items = items
        return Content("  ").join(hint for _rank, hint in items)

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
        """The most important hints that fit width (each whole), in order."""
        kept, used = set(), 1
        for index, (_rank, hint) in sorted(enumerate(self.items), key=lambda item: item[1][0]):
            needed = hint.cell_length + (2 if kept else 0)
            if used + needed <= width:
                kept.add(index)
                used += needed
        return Content(" ") + Content("  ").join(hint for index, (_r, hint) in enumerate(self.items) if index in kept)

    def render(self) -> Content:
        hints = self.fitted(self.size.width)
        gap = self.size.width - hints.cell_length - len(PALETTE_HINT)
        if gap < 2 or not getattr(self, "palette", True):
            return hints
        return Content.assemble(hints, " " * gap, ("▏", "$text-muted"), ("^p", "bold $accent"),
                                (" palette", "$text-muted"))
