"""The Findings tab's list: every open finding and comment, P0 first, one line each; enter jumps to it."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from orchestra.core.base.findings import Finding
from orchestra.ui.findings import finding_entry


class FindingsList(OptionList):
    """Open findings in the order given (the policy's: by priority), marked when selected to send back."""

    DEFAULT_CSS = """
    FindingsList { height: 1fr; border: none; padding: 0; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    class Chosen(Message):
        """The conductor pressed enter on a finding: show it in the diff."""

        def __init__(self, finding: Finding) -> None:
            super().__init__()
            self.finding = finding

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.findings: list[Finding] = []

    def show_findings(self, findings: Sequence[Finding], selected: Collection[str], remaining: Collection[str]) -> None:
        """List findings; keep the highlight on the same finding when it is still there."""
        current = self.highlighted_finding()
        self.findings = list(findings)
        self.clear_options()
        self.add_options([Option(finding_entry(f, f.id in selected, f.id in remaining), id=f.id) for f in findings])
        if not findings:
            self.add_option(Option("[$text-muted]No open findings: nothing the reviewers, the scans or you "
                                   "raised on this tree.[/]", disabled=True))
            return
        ids = [f.id for f in self.findings]
        self.highlighted = ids.index(current.id) if current and current.id in ids else 0

    def highlighted_finding(self) -> Finding | None:
        """The finding under the highlight."""
        index = self.highlighted
        return self.findings[index] if index is not None and 0 <= index < len(self.findings) else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        finding = self.highlighted_finding()
        if finding is not None:
            self.post_message(self.Chosen(finding))
