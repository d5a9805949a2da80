"""How findings read in the UI: priority badges, who raised them, one-line entries and the fate of sent ones.

Markup only; which findings are open and what became of sent ones is asked of the policy.
"""

from __future__ import annotations

from textual.markup import escape

from orchestra.core.base.findings import Finding
from orchestra.core.policy import FeedbackStatus

PRIORITY_STYLE = {"P0": "b $text-error", "P1": "$text-error", "P2": "$text-warning", "P3": "$text-muted"}
COMMENT_STYLE = "$text-accent"
SELECTED_MARK = "✓"
COMMENT_MARK = "✎"


def is_comment(finding: Finding) -> bool:
    """Whether it is the conductor's own line comment (sent with every redirect, never selected)."""
    return finding.source == "comment"


def source_label(finding: Finding) -> str:
    """Who says it: the reviewer's name, the SARIF check, "secrets", or "you" for the conductor's comment."""
    if is_comment(finding):
        return "you"
    return finding.source.split(":", 1)[-1] or finding.source


def badge(finding: Finding) -> str:
    """The priority, coloured (P0 red and bold … P3 muted); a pen for the conductor's comment."""
    if is_comment(finding):
        return f"[{COMMENT_STYLE}]{COMMENT_MARK} [/]"
    return f"[{PRIORITY_STYLE.get(finding.priority, '$text-muted')}]{finding.priority}[/]"


def finding_entry(finding: Finding, selected: bool = False, remains: bool = False) -> str:
    """One line of the Findings tab: "✓ P1 src/a.py:12 title — reviewer" (✓ when selected to send back, ↺ when
    a redirect sent it and it is still open)."""
    mark = f"[b $text-accent]{SELECTED_MARK}[/]" if selected else " "
    again = "[b $text-warning]↺[/]" if remains else " "
    tail = " [$text-warning](still open after your redirect)[/]" if remains else ""
    return (f"{mark}{again}{badge(finding)} [$text-muted]{escape(finding.place)}[/] {escape(finding.title)}"
            f" [$text-muted]— {escape(source_label(finding))}[/]{tail}")


def sent_summary(findings: int, comments: int) -> str:
    """"3 findings and 2 comments" (what a redirect sends), or "" when it sends nothing."""
    parts = [f"{count} {word}{'s' if count != 1 else ''}" for count, word in
             ((findings, "finding"), (comments, "comment")) if count]
    return " and ".join(parts)


def feedback_markup(status: FeedbackStatus) -> str:
    """What became of the findings the last redirect sent back: resolved, remaining, not checked again yet."""
    total = len(status.resolved) + len(status.remaining) + len(status.unknown)
    head = [f"[b]Your last redirect sent {total} finding{'s' if total != 1 else ''}:[/b]",
            f"[$text-success]✓ {len(status.resolved)} resolved[/]",
            f"[$text-error]✗ {len(status.remaining)} still open[/]"]
    if status.unknown:
        head.append(f"[$text-muted]? {len(status.unknown)} not checked again yet[/]")
    lines = ["  ".join(head)]
    for mark, style, word, group in (("✓", "$text-success", "resolved", status.resolved),
                                     ("✗", "$text-error", "still open", status.remaining),
                                     ("?", "$text-muted", "not checked yet", status.unknown)):
        lines.extend(f"  [{style}]{mark} {word:<15}[/] {finding.priority} [$text-muted]{escape(finding.place)}[/] "
                     f"{escape(finding.title)}" for finding in group)
    return "\n".join(lines)
