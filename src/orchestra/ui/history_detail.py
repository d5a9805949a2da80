"""One ledger entry's evidence, opened from the History screen; z there asks to revert its run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from orchestra.core.ledger.history import HistoryRow
from orchestra.ui.history_text import entry_detail, entry_title
from orchestra.ui.key_bar import KeyBar


class HistoryDetail(ModalScreen[bool]):
    """The entry's evidence; answers True when z asks to revert the entry's run, False when closed."""

    DEFAULT_CSS = """
    HistoryDetail { layout: vertical; background: $surface; }
    HistoryDetail #title { height: 1; width: 1fr; background: $panel; padding: 0 1; text-wrap: nowrap;
                           text-overflow: ellipsis; }
    HistoryDetail #evidence { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    """
    BINDINGS = [
        Binding("escape,q", "back", "History", id="history.detail_back", tooltip="Back to the list of decisions",
                priority=True),
        Binding("z", "revert", "Revert", id="history.detail_revert",
                tooltip="Undo this accept's merge on its target with a revert commit (asks why)"),
    ]
    AUTO_FOCUS = "#evidence"  # arrows and page keys scroll it

    def __init__(self, row: HistoryRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        yield Label(entry_title(self.row), id="title")
        with VerticalScroll(id="evidence"):
            yield Static(entry_detail(self.row), id="detail")
        yield KeyBar(palette=False)

    def action_back(self) -> None:
        if self.is_current:
            self.dismiss(False)

    def action_revert(self) -> None:
        if self.is_current:
            self.dismiss(True)
