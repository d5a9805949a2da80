"""One run in the fleet grid: who, what, how far, the evidence, and the live tail of its output."""

from __future__ import annotations

import itertools
import math
import textwrap
from collections import deque

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual.content import Content
from textual.events import Click
from textual.markup import escape
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.style import Style
from textual.timer import Timer
from textual.widget import Widget

from orchestra.core.policy import evidence, readiness
from orchestra.core.runs.run import Run
from orchestra.core.runs.workflow import label, paused
from orchestra.core.fleet.approvals import approvals_line
from orchestra.ui.format import (READY, behind_text, diffstat_text, duration, event_line, evidence_text, gates_text,
                                 state_text, usage_text)

TAIL_LINES = 200
MESSAGE_LINES = 2  # a failed run's message gets at most this many lines in the pane
# An unfocused pane shows new output at most this often: a streaming fleet would otherwise repaint every
# pane several times a second, which is what an SSH link has to carry (benchmarks/terminal_bytes_bench.py).
UNFOCUSED_INTERVAL = 1.0
OUTPUT_STYLE = "$text-muted"


class Output(str):
    """A line of the agent's own output in a pane's tail: shown as written (never parsed as markup), muted.

    It is drawn straight to one segment of the terminal line: the tails are most of what a fleet's first
    frame draws, and Textual's general path for text (wrapping and styling spans) cost 0.2 ms a line."""

    __slots__ = ()

    @property
    def plain(self) -> str:
        return str(self)


Row = Content | Output


class RunPane(Widget, can_focus=True):
    """Shows one run; focus marks it as the run the keys act on.

    The pane is a single widget that draws its lines itself (status, gates, a failed run's message,
    then as much of the output tail as fits), one row at a time (Textual's line API): a fleet of panes is
    cheap to lay out, style and draw, which keeps the first paint fast. It repaints only the rows whose text
    changed, and its tail scrolls by half
    its height at a time (as a terminal's jump scroll does), so a new line usually repaints one row, not all.
    """

    DEFAULT_CSS = """
    RunPane {
        border: round $border-blurred;  /* each theme gives it 3:1 contrast on $surface */
        border-title-color: $foreground;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        height: 1fr;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RunPane:focus { border: round $primary; border-title-style: bold; background: $boost; }
    RunPane.-review { border: round $warning 60%; }
    RunPane.-review:focus { border: round $warning; }
    RunPane.-failed { border: round $error 60%; }
    RunPane.-failed:focus { border: round $error; }
    RunPane.-waiting { border: double $warning 80%; }
    RunPane.-interrupted { border: round $warning 60%; }
    RunPane.-waiting:focus { border: double $warning; }
    """

    class Opened(Message):
        """The conductor asked to review this run."""

        def __init__(self, run_id: str) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, run: Run, now: float) -> None:
        # State classes are set up front: changing them after mount restyles the pane.
        super().__init__(id=f"run-{run.id}", classes=f"-{run.state}")
        self.run = run
        # Parsed once when they arrive: a streaming fleet redraws panes many times a second.
        self.tail: deque[Row] = deque(maxlen=TAIL_LINES)
        self.now = now
        self.appended = 0  # lines ever added to the tail: where the jump-scrolled view starts depends on it
        self.group_label = ""  # "group g3 · 4 runs", set by the fleet
        self.live = False  # shown as the fleet's current run (in the list view): repainted at once, like focus
        self._evidence_line: tuple[int, Content] | None = None  # (width, line), made again when the run changes
        self._painted: list[tuple] | None = None  # each row's text and spans as last asked to repaint
        self._frame: list[Row] = []  # the rows being drawn (render_lines), and the style of output among them
        self._output_style = Style()
        self._pending: Timer | None = None
        self._held = False  # a repaint was asked for while another screen covered the fleet
        self._set_titles()

    @classmethod
    def with_events(cls, run: Run, events: list[dict], now: float) -> RunPane:
        """A pane for run whose tail starts with the given events."""
        pane = cls(run, now)
        pane.extend_tail(tail_lines(events))
        return pane

    def _set_titles(self) -> None:
        # Only when they change: setting a border title repaints the whole pane.
        where = f" @{escape(self.run.host)}" if self.run.host else ""  # a run at another host
        title = f"{escape(self.run.id)} {escape(self.run.agent)}{where}"
        subtitle = " · ".join(filter(None, (escape(self.run.spec or "task"), self.group_label)))
        if self.border_title != title:
            self.border_title = title
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def set_group_label(self, label: str) -> None:
        if label != self.group_label:
            self.group_label = label
            self._set_titles()

    def status_line(self) -> Content:
        usage = usage_text(self.run)
        return Content.assemble(state_text(self.run), f"  {duration(self.run.elapsed(self.now))}  ",
                                diffstat_text(self.run), *(("  ", usage) if usage else ()), behind_text(self.run))

    def evidence_line(self, width: int) -> Content:
        """The run's evidence (policy.evidence) fitted to the pane; "ready" when `a` accepts it at once."""
        if not self.run.gates:
            return gates_text(self.run)
        if self._evidence_line is None or self._evidence_line[0] != width:
            ready = self.run.state == "review" and readiness(self.run).ready
            self._evidence_line = (width, evidence_text(evidence(self.run), width, READY if ready else None))
        return self._evidence_line[1]

    def message_lines(self, width: int) -> list[Content]:
        """What the conductor must not miss, wrapped to the pane: a failed run's message, a waiting agent's
        question, a kept worktree, or what the agent did to its branch."""
        run, width = self.run, max(10, width)
        if run.state == "rejected":
            reason = (run.decision or {}).get("reason")
            return wrapped(f"rejected: {reason}" if reason else "rejected without a reason", width, "$text-muted")
        if run.reverted:
            reason = f": {run.reverted['reason']}" if run.reverted.get("reason") else ""
            return wrapped(f"reverted by {run.reverted.get('actor')}{reason}", width, "$warning")
        granted_by = (run.decision or {}).get("granted_by")
        if run.state == "accepted" and granted_by:
            return wrapped(f"accepted by policy: autonomy granted by {granted_by}", width, "$accent")
        approvals = approvals_line(run)
        if approvals:
            return wrapped(approvals, width, "$accent")
        if run.slot_wait and run.state == "queued":  # every slot it may use is busy: it starts when one frees
            return wrapped(run.message, width, "$text-muted")
        if paused(run):  # a workflow waiting for an approval, or stopped at a stage: what now, in its words
            return wrapped(run.message, width, "$accent" if run.workflow.get("status") == "approval" else "$warning")
        if run.workflow and run.state == "working":  # "2/4 tests: tester working"
            return wrapped(f"{label(run)} working", width, "$text-muted")
        if run.state in ("failed", "waiting", "interrupted") and run.message:
            style = "$error" if run.state == "failed" else "$warning"
            return wrapped(run.message, width, style)
        if run.kept:
            return wrapped(f"worktree kept: {run.kept['reason']}", width, "$warning")
        moves = [escape_["what"] for escape_ in run.escapes if not escape_.get("ref")]
        if moves:
            more = f" (+{len(moves) - 1} more)" if len(moves) > 1 else ""
            return wrapped(f"⚠ {moves[0]}{more}", width, "$warning")
        if run.sandbox and not run.sandbox.get("sandboxed"):
            return wrapped(f"⚠ not sandboxed: {run.sandbox.get('why_not') or 'the sandbox is off'}", width, "$warning")
        return []

    def rows(self) -> list[Row]:
        """The pane's content rows: the head, then the tail's view, padded to the pane's height."""
        width, height = self.size.width or 80, self.size.height or 20
        lines: list[Row] = [self.status_line(), self.evidence_line(width), *self.message_lines(width)][:height]
        lines.extend(self.tail_view(height - len(lines)))
        return lines + [Output("")] * (height - len(lines))

    def tail_view(self, room: int) -> list[Row]:
        """The newest tail lines that fit in room rows. Once the tail is longer than room, the view moves by
        half of room at a time, so between moves a new line only fills the next empty row."""
        if room <= 0 or not self.tail:
            return []
        step = max(1, room // 2)
        first = max(0, math.ceil((self.appended - room) / step) * step)  # counted over every line ever added
        skip = max(0, first - (self.appended - len(self.tail)))
        return list(itertools.islice(self.tail, skip, skip + room))

    def render(self) -> Content:
        """The rows as one text: what a mouse selection selects from (drawing goes row by row)."""
        return Content("\n").join(as_content(row) for row in self.rows())

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self.rows()  # once per frame; render_line draws the rows Textual asks for
        self._output_style = self.visual_style + Style.parse(OUTPUT_STYLE)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self.text_selection is not None:
            return super().render_line(y)  # Textual's own path draws the selection
        width = self.size.width
        row = self._frame[y] if y < len(self._frame) else Output("")
        # Each segment's style carries its offset: what a mouse selection starts from, as when Textual draws text.
        if isinstance(row, Output):
            text = row if cell_len(row) <= width else set_cell_size(row, max(0, width - 1)) + "…"
            return Strip([Segment(text, self._output_style.rich_style_with_offset(0, y))] if text else [])
        if row.cell_length > width:
            row = row.truncate(width, ellipsis=True)
        segments, x = [], 0
        for text, style in row.render(self.visual_style, end=""):
            segments.append(Segment(text, style.rich_style_with_offset(x, y)))
            x += len(text)
        return Strip(segments)

    def repaint(self) -> None:
        """Repaint the rows whose text or style changed since the last repaint (all of them the first time)."""
        self._cancel_pending()
        if not self.is_mounted or not self.size.height:
            self.refresh()
            return
        if not self.screen.is_active:
            # Under the help or a dialog: a translucent screen redraws the fleet beneath it in full, dimmed,
            # for each repaint. The fleet shows what changed when it is on top again (release()).
            self._held = True
            return
        rows = [row_key(row) for row in self.rows()]
        painted, self._painted = self._painted, rows
        if painted is None or len(painted) != len(rows):
            self.refresh()
            return
        changed = [y for y, (old, new) in enumerate(zip(painted, rows)) if old != new]
        width = self.content_size.width
        # One region per run of adjacent changed rows.
        runs: list[list[int]] = []
        for y in changed:
            if runs and runs[-1][1] == y:
                runs[-1][1] = y + 1
            else:
                runs.append([y, y + 1])
        if runs:
            self.refresh(*(Region(0, start, width, end - start) for start, end in runs))

    def release(self) -> None:
        """Repaint what was held while another screen covered the fleet."""
        if self._held:
            self._held = False
            self.repaint()

    def repaint_soon(self) -> None:
        """Repaint at once when the conductor looks at this pane, else at most every UNFOCUSED_INTERVAL."""
        if self.has_focus or self.live:
            self.repaint()
        elif self._pending is None:
            self._pending = self.set_timer(UNFOCUSED_INTERVAL, self.repaint, name="pane repaint")

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None

    def show_run(self, run: Run, now: float) -> None:
        """Render the run's state (called when its record changes); a new state shows at once."""
        moved = run.state != self.run.state
        self.run, self.now = run, now
        self._evidence_line = None
        self._set_titles()
        for state in ("review", "failed", "waiting", "interrupted"):
            self.set_class(run.state == state, f"-{state}")
        if moved:
            self.repaint()
        else:
            self.repaint_soon()

    def tick(self, now: float) -> None:
        """Refresh the elapsed time (each second while the run works): only its row, and only if it changed."""
        self.now = now
        if self._pending is None:
            self.repaint()

    def extend_tail(self, lines: list[Row]) -> None:
        self.tail.extend(lines)
        self.appended += len(lines)

    def add_events(self, events: list[dict]) -> None:
        lines = tail_lines(events)
        if lines:
            self.extend_tail(lines)
            self.repaint_soon()

    def on_resize(self) -> None:
        self._painted = None
        self.refresh()

    def on_focus(self) -> None:
        self._painted = None  # the focus restyles the whole pane; pending output shows with it
        self.repaint()

    def on_blur(self) -> None:
        self._painted = None
        self.repaint()

    def on_click(self, event: Click) -> None:
        self.focus()
        if event.chain >= 2:
            self.post_message(self.Opened(self.run.id))


def tail_lines(events: list[dict]) -> list[Row]:
    """The events shown in a pane's tail, as muted text."""
    return [line for line in map(tail_line, events) if line is not None]


def tail_line(event: dict) -> Row | None:
    """One event in a pane's tail. The agent's output (nearly every line) is kept as it is, not escaped
    and parsed as markup again: parsing took 30 ms of a 50-run fleet's first paint."""
    if event.get("type") == "output":
        return Output(event.get("text", ""))
    line = event_line(event)
    return None if line is None else Content.from_markup(f"[{OUTPUT_STYLE}]{line}[/]")


def as_content(row: Row) -> Content:
    return Content.styled(row, OUTPUT_STYLE) if isinstance(row, Output) else row


def row_key(row: Row) -> tuple:
    """What a row shows: its text and its styles."""
    return (row, ()) if isinstance(row, Output) else (row.plain, tuple(row.spans))


def wrapped(text: str, width: int, style: str) -> list[Content]:
    """text in at most MESSAGE_LINES lines of width, styled."""
    lines = textwrap.wrap(text, width, max_lines=MESSAGE_LINES, placeholder=" …")
    return [Content.styled(line, style) for line in lines]
