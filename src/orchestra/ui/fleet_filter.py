"""Which runs the fleet shows and in what order: decided runs archived, a typed filter, a sort, groups kept together."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from textual.markup import escape

from orchestra.core.runs.run import DECIDED_STATES, Run, group_of

# Needs-you first: a question, a decision, a failure, then what is still moving, then what is done.
STATE_ORDER = ("waiting", "review", "failed", "interrupted", "working", "queued", "stopped", "accepted", "rejected")
SORTS = ("age", "state")


@dataclass(frozen=True)
class FleetView:
    """The conductor's choices of what the fleet shows."""

    show_decided: bool = False
    words: tuple[str, ...] = ()
    sort: str = "age"

    def with_filter(self, text: str) -> FleetView:
        return replace(self, words=tuple(text.lower().split()))

    def next_sort(self) -> FleetView:
        return replace(self, sort=SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def toggle_decided(self) -> FleetView:
        return replace(self, show_decided=not self.show_decided)

    def shows(self, run: Run) -> bool:
        """Whether run passes the archive and the filter (every word in its state, spec, agent or id)."""
        if run.state in DECIDED_STATES and not self.show_decided:
            return False
        haystack = " ".join((run.state, run.spec or "task", run.agent, run.id)).lower()
        return all(word in haystack for word in self.words)

    def arrange(self, runs: list[Run]) -> list[Run]:
        """The shown runs in order, each group's runs together (placed where its first member sorts)."""
        shown = sorted((run for run in runs if self.shows(run)), key=self.sort_key)
        places: dict[str, int] = {}
        for place, run in enumerate(shown):
            places.setdefault(group_of(run), place)
        return sorted(shown, key=lambda run: (places[group_of(run)], self.sort_key(run)))

    def sort_key(self, run: Run) -> tuple:
        age = (run.created, run_number(run.id))
        if self.sort == "state":
            rank = STATE_ORDER.index(run.state) if run.state in STATE_ORDER else len(STATE_ORDER)
            return (rank, *age)
        return age

    def summary(self, runs: list[Run], archive_key: str) -> str:
        """The top bar's markup: how many runs are in each state, then what this view hides, filters, sorts.
        Archived runs are counted once, as hidden: the bar must fit 80 columns."""
        counts: dict[str, int] = {}
        hidden = 0
        for run in runs:
            if run.state in DECIDED_STATES and not self.show_decided:
                hidden += 1
            else:
                counts[run.state] = counts.get(run.state, 0) + 1
        states = " · ".join(f"{n} {state}" for state, n in counts.items()) or ("" if hidden else "no runs")
        described = self.describe(hidden, archive_key)
        return states + (f"   [$text-muted]{escape(described)}[/]" if described else "")

    def describe(self, hidden: int, archive_key: str) -> str:
        """What the top bar says about this view (plain text); empty for the default view with nothing hidden."""
        parts = []
        if self.words:
            parts.append(f"filter “{' '.join(self.words)}”")
        if self.sort != "age":
            parts.append("needs-you first")
        if hidden:
            parts.append(f"{hidden} decided hidden · {archive_key} shows")
        elif self.show_decided:
            parts.append(f"decided shown · {archive_key} hides")
        return "; ".join(parts)


def run_number(run_id: str) -> int:
    digits = re.sub(r"\D", "", run_id)
    return int(digits) if digits else 0


def group_sizes(runs: list[Run]) -> dict[str, int]:
    """How many of runs each group holds."""
    sizes: dict[str, int] = {}
    for run in runs:
        sizes[group_of(run)] = sizes.get(group_of(run), 0) + 1
    return sizes


def group_label(group: str, size: int) -> str:
    """"group g3 · 4 runs"; empty for a run started alone."""
    return f"group {group} · {size} runs" if size > 1 else ""
