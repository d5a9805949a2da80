"""Short, theme-aware text for run states, times, diff stats and gate badges.

Built as styled text (Textual `Content`) from the start, never as markup parsed back: a fleet draws these
for every pane, and parsing markup was most of a pane's cost. Markup consumers take `.markup`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from textual.content import Content
from textual.markup import escape

from orchestra.core.policy import EvidenceItem
from orchestra.core.runs.lifecycle import event_text
from orchestra.core.runs.run import Gate, Run
from orchestra.core.runs.workflow import current, paused

STATE_STYLE = {
    "queued": ("◌", "$text-muted"), "working": ("●", "$accent"), "waiting": ("◐", "$warning"),
    "review": ("◆", "$warning"),
    "accepted": ("✔", "$success"), "rejected": ("✘", "$text-muted"), "failed": ("✖", "$error"),
    "stopped": ("■", "$text-muted"), "interrupted": ("↯", "$warning"),
}
GATE_STYLE = {
    "passed": ("✓", "$success"), "failed": ("✗", "$error"), "error": ("✗", "$error"),
    "running": ("⟳", "$accent"), "pending": ("…", "$text-muted"),
}


def duration(seconds: float) -> str:
    """Elapsed time as m:ss or h:mm:ss."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def state_text(run: Run) -> Content:
    if run.reverted:  # accepted, then undone on the target
        return Content.styled("↺ reverted", "$warning")
    glyph, style = STATE_STYLE.get(run.state, ("?", "$text-muted"))
    if run.state == "accepted" and (run.decision or {}).get("granted_by"):  # by policy, not by a human
        return Content.styled(f"{glyph} accepted (auto)", style)
    if run.state == "review" and paused(run):  # a workflow between stages: what it waits for, not a merge
        stage = (current(run) or {}).get("name", "stage")
        if run.workflow.get("status") == "approval":
            return Content.styled(f"{glyph} approve {stage}", "$accent")
        return Content.styled(f"✗ stopped at {stage}", "$warning")
    if run.state == "queued" and run.slot_wait:
        return Content.styled(f"{glyph} queued: no free slot", style)
    activity = run.activity or {}
    if run.state == "working" and activity.get("state") in ("stalled", "unknown"):  # "unknown": older records
        # Honest: a quiet agent may be thinking or stuck; its last words say what it was doing.
        return Content.assemble((f"{glyph} stalled", "$warning"), " ",
                                (f"({activity.get('reason', '')})", "$text-muted"))
    return Content.styled(f"{glyph} {run.state}", style)


def diffstat_text(run: Run) -> Content:
    if run.candidate is None and not run.files_changed:
        return Content.styled("no changes yet", "$text-muted")
    files = "file" if run.files_changed == 1 else "files"
    return Content.assemble(f"{run.files_changed} {files} ", (f"+{run.lines_added}", "$success"), " ",
                            (f"−{run.lines_removed}", "$error"))


def usage_text(run: Run) -> Content:
    """Tokens and cost of an llm run (empty for other agents)."""
    usage = run.usage
    if not usage:
        return Content()
    tokens = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
    cost = usage.get("cost")
    price = f"${cost:.2f}" if cost is not None else "cost unknown"
    return Content.styled(f"{compact(tokens)} tok · {price} · {usage.get('turns') or 0} turns", "$text-muted")


def compact(number: int) -> str:
    """12345 -> 12.3k, 1234567 -> 1.2M."""
    if number >= 1_000_000:
        return f"{number / 1_000_000:.1f}M"
    if number >= 1_000:
        return f"{number / 1_000:.1f}k"
    return str(number)


def gate_label(gate: Gate, tree: str | None) -> str:
    """A gate's one-word status, saying 'stale' when it ran on an older tree."""
    if gate.is_stale(tree) and gate.status not in ("running", "pending"):
        return "stale"
    return gate.status


def gate_text(gate: Gate, tree: str | None, detailed: bool = False) -> Content:
    """A gate badge: glyph, name and (when known) its counts; stale results are dimmed and marked."""
    stale = gate.is_stale(tree) and gate.status not in ("running", "pending")
    glyph, style = GATE_STYLE.get(gate.status, ("?", "$text-muted"))
    counts = ""
    if gate.kind == "command" and gate.status in ("passed", "failed") and (gate.passed is not None or detailed):
        counts = f" {gate.summary}"
    elif gate.kind == "boundary" and gate.status == "failed":
        counts = f" {len(gate.failures)} out"
    if stale:
        return Content.assemble((f"{glyph} {gate.name}{counts}", "$text-muted strike"), " ", ("stale", "$warning"))
    return Content.styled(f"{glyph} {gate.name}{counts}", style)


def gates_text(run: Run) -> Content:
    if not run.gates:
        if run.is_active:
            return Content.styled("gates run when the agent finishes", "$text-muted")
        return Content.styled("no gates", "$text-muted")
    return Content("  ").join(gate_text(gate, run.tree) for gate in run.gates.values())


def event_line(event: dict) -> str | None:
    """How an event reads in an output log (markup), or None for events that are not shown there."""
    kind = event.get("type")
    if kind == "output":
        return escape(event.get("text", ""))
    if kind == "note":
        return f"[$text-muted]» {escape(event.get('text', ''))}[/]"
    if kind == "state":
        message = event.get("message") or ""
        if event.get("state") in ("queued", "working") and not message:
            return None  # routine transitions; the status line already shows them
        return f"[$text-muted]» {escape(event_text(event.get('state', ''), message))}[/]"
    return None


# -- the evidence line: policy.evidence(run), shortened to fit -------------------------------------------

EVIDENCE_LABELS = {"tests": ("tests", "t"), "coverage": ("cov", "cov"), "bench": ("bench", "bn"),
                   "boundary": ("bounds", "bnd"), "scans": ("scans", "scan"), "review": ("review", "rev")}
EVIDENCE_STATE = {"ok": ("✓", "$text-success"), "bad": ("✗", "$text-error"), "pending": ("…", "$text-muted"),
                  "stale": ("~", "$text-warning"), "none": ("-", "$text-muted")}
FINDING_COUNT_STYLE = {"P0": "b $text-error", "P1": "$text-error", "P2": "$text-warning", "P3": "$text-muted"}
_STATE_WORDS = {"ok", "failed", "stale", "running", "waiting"}


READY = Content.styled("✔ ready", "b $text-success")


class Detail(NamedTuple):
    """How much of the evidence line is spelt out. Words go before numbers: a passing part's words first,
    then the explanation of the head, then long labels; a failing part's words ("40 failed") go last."""

    texts: bool    # the words of a passing part: "12 passed" → "12", a review's "approved"
    short: bool    # "t", "bnd", "scan" for "tests", "bounds", "scans"
    compact: bool  # only the two highest counts of findings, then "+N"
    tight: bool    # the glyph against its label, parts apart by one space
    brief_head: bool = False  # the head without its explanation: "not ready: why in 2 Gates" → "not ready"
    bad_texts: bool = True    # the words of a failing or stale part's counts: "40 failed" → "40"


DETAILS = (Detail(True, False, False, False), Detail(False, False, False, False), Detail(False, False, True, False),
           Detail(False, False, True, False, brief_head=True), Detail(False, True, True, False, brief_head=True),
           Detail(False, True, True, True, brief_head=True),
           Detail(False, True, True, True, brief_head=True, bad_texts=False))


def evidence_text(items: Iterable[EvidenceItem], width: int | None = None, head: Content | None = None) -> Content:
    """The evidence line, e.g. "tests ✗ 40 failed · cov ✓ 84% · bounds ✓ · scans ✗ · review ✓ approved · P1:2"
    (after head, e.g. READY), shortened until it fits width; a stale part always says "stale"."""
    items = list(items)
    line = Content()
    for detail in DETAILS:
        heads = [brief(head) if detail.brief_head else head] if head else []
        line = Content(" " if detail.tight else " · ").join([*heads, *(evidence_part(item, detail) for item in items)])
        if width is None or line.cell_length <= width:
            break
    return line


def brief(head: Content) -> Content:
    """The head without its explanation: "not ready: why in 2 Gates" → "not ready"."""
    colon = head.plain.find(":")
    return head if colon < 0 else head[:colon]


def evidence_part(item: EvidenceItem, detail: Detail = DETAILS[0]) -> Content:
    """One part of the evidence line: label, state glyph in its colour, and what detail allows of its text."""
    if item.label == "findings":
        return findings_counts(item.counts, detail.compact)
    names = EVIDENCE_LABELS.get(item.label, (item.label, item.label))
    label = names[1] if detail.short else names[0]
    gap = "" if detail.tight else " "
    glyph, style = EVIDENCE_STATE.get(item.state, ("?", "$text-muted"))
    counted = item.state in ("bad", "stale") and any(c.isdigit() for c in item.text)  # "40 failed", "71% < 80%"
    texts = detail.bad_texts if counted else detail.texts
    text, same = _item_words(item, texts)
    flag = "" if not same else "⚠" if detail.tight else "⚠same" if detail.short else "same provider"
    if item.state == "stale":
        shown = f" {text}" if text and texts else ""
        return Content.assemble((f"{label}{shown}", "$text-muted strike"), " ", ("stale", "$text-warning"))
    if item.state == "pending":
        return Content.styled(f"{label}{gap}{glyph}", "$text-muted")
    part = Content.assemble(f"{label}{gap}", (f"{glyph}{' ' + text if text else ''}", style))
    return Content.assemble(part, "" if detail.tight else " ", (flag, "$text-warning")) if flag else part


def findings_counts(counts: Iterable[tuple[str, int]], compact: bool) -> Content:
    """"P1:2 P2:1" in the priorities' colours; compact: the two highest, then "+N" for the rest."""
    parts = list(counts)
    shown = parts[:2] if compact else parts
    rest = sum(n for _, n in parts[len(shown):])
    counted = Content(" ").join(Content.styled(f"{priority}:{n}", FINDING_COUNT_STYLE.get(priority, "$text-muted"))
                                for priority, n in shown)
    return Content.assemble(counted, " ", (f"+{rest}", "$text-muted")) if rest else counted


def _item_words(item: EvidenceItem, texts: bool) -> tuple[str, bool]:
    """The part's text (numbers only unless texts), and whether it flags a reviewer of the author's provider."""
    text, same = item.text.strip(), item.same_provider
    if text in _STATE_WORDS or item.state == "pending":
        return "", same
    if item.label == "tests":
        if text.endswith(" passed"):
            return (text.removesuffix(" passed") if texts else ""), same
        return (text if texts else text.split()[0]), same
    if item.label == "review":
        return (text.replace("changes requested", "changes") if texts else ""), same
    if item.label == "coverage":
        return (text[:14] if texts else text.split()[0][:8]), same
    return (text[:14] if texts else ""), same


def behind_text(run: Run) -> Content:
    """"  3 behind main" (muted, led by two spaces) when the target has moved on since the run's base; empty
    when it has not, or when the count was taken against another base (it is counted again off the UI's
    thread)."""
    behind = run.behind or {}
    commits = behind.get("commits")
    if not isinstance(commits, int) or commits <= 0 or behind.get("base") != (run.merge_base or run.base):
        return Content()
    return Content.assemble("  ", (f"{commits} behind {run.target}", "$text-muted"))
