"""Short, theme-aware text for run states, times, diff stats and gate badges (Textual content markup)."""

from __future__ import annotations

from textual.markup import escape

from orchestra.core.runs.run import Gate, Run

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


def state_markup(run: Run) -> str:
    glyph, style = STATE_STYLE.get(run.state, ("?", "$text-muted"))
    activity = run.activity or {}
    if run.state == "working" and activity.get("state") == "unknown":
        # Honest: a quiet agent may be thinking or stuck; orchestra cannot tell which.
        return f"[{style}]{glyph} working?[/] [$text-muted]({escape(activity.get('reason', ''))})[/]"
    return f"[{style}]{glyph} {run.state}[/]"


def diffstat_markup(run: Run) -> str:
    if run.candidate is None and not run.files_changed:
        return "[$text-muted]no changes yet[/]"
    files = "file" if run.files_changed == 1 else "files"
    return f"{run.files_changed} {files} [$success]+{run.lines_added}[/] [$error]−{run.lines_removed}[/]"


def usage_markup(run: Run) -> str:
    """Tokens and cost of an llm run ("" for other agents)."""
    usage = run.usage
    if not usage:
        return ""
    tokens = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
    cost = usage.get("cost")
    price = f"${cost:.2f}" if cost is not None else "cost unknown"
    return f"[$text-muted]{compact(tokens)} tok · {price} · {usage.get('turns') or 0} turns[/]"


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


def gate_markup(gate: Gate, tree: str | None, detailed: bool = False) -> str:
    """A gate badge: glyph, name and (when known) its counts; stale results are dimmed and marked."""
    stale = gate.is_stale(tree) and gate.status not in ("running", "pending")
    glyph, style = GATE_STYLE.get(gate.status, ("?", "$text-muted"))
    counts = ""
    if gate.kind == "command" and gate.status in ("passed", "failed") and (gate.passed is not None or detailed):
        counts = f" {escape(gate.summary)}"
    elif gate.kind == "boundary" and gate.status == "failed":
        counts = f" {len(gate.failures)} out"
    if stale:
        return f"[$text-muted strike]{glyph} {escape(gate.name)}{counts}[/] [$warning]stale[/]"
    return f"[{style}]{glyph} {escape(gate.name)}{counts}[/]"


def gates_markup(run: Run) -> str:
    if not run.gates:
        if run.is_active:
            return "[$text-muted]gates run when the agent finishes[/]"
        return "[$text-muted]no gates[/]"
    return "  ".join(gate_markup(gate, run.tree) for gate in run.gates.values())


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
        return f"[$text-muted]» {escape(event.get('state', ''))}{': ' + escape(message) if message else ''}[/]"
    return None
