"""One ledger entry's evidence as text for the History screen: who and what, the gates with their trees, the
review's verdict, findings, redirect data, revert links, approvals and the signature, then any other field.

Every value comes from the ledger, untrusted: each goes in as plain text (never markup) through `text`,
which also keeps it to one printable line; a field of an unexpected type is shown as its JSON."""

from __future__ import annotations

from typing import Any

from textual.content import Content

from orchestra.core.ledger.history import HistoryRow, actor_label, gates_of, gates_summary, is_review, local_time, text
from orchestra.ui.format import GATE_STYLE

LABEL_WIDTH = 11  # with a hash of 64 after it, a line fits 80 columns
FILES_SHOWN = 5
LINES_SHOWN = 40  # of an instruction, a reason: the rest is in the ledger
ITEMS_SHOWN = 20  # findings, comments, approvals
VERDICT_STYLE = {"approved": "$text-success", "changes requested": "$text-error"}
# Fields shown in their own place; every other field is listed under "Other fields".
SHOWN = frozenset({
    "seq", "hash", "prev", "time", "action", "actor", "granted_by", "demoted", "decision", "run", "agent", "spec",
    "spec_hash", "target", "candidate", "tree", "merge_commit", "diff_sha256", "files", "gates", "findings",
    "instruction", "message", "comments", "reverts", "reverts_decision", "reverted_merge", "revert_commit",
    "forced", "unready", "recovered", "approvals", "sig", "signer", "reason", "level", "streak", "anchored",
    "autonomy", "grant", "cause", "needed", "counted",
})


def entry_title(row: HistoryRow) -> Content:
    """"#12  accept  2026-11-01 13:00:00 CET"."""
    return Content.assemble((f"#{row.seq or '?'}  ", "b"), (row.action, "b $accent"),
                            "  ", local_time(row.entry.get("time"), short=False))


def entry_detail(row: HistoryRow) -> Content:
    """Everything the entry records, in sections."""
    entry = row.entry
    lines = [*identity_lines(entry), *outcome_lines(row), *gate_lines(entry), *review_lines(entry),
             *findings_lines(entry), *redirect_lines(entry), *revert_lines(entry), *approval_lines(entry),
             *ledger_lines(entry), *other_lines(entry)]
    return Content("\n").join(lines)


def field(label: str, *parts: str | Content | tuple[str, str]) -> Content:
    return Content.assemble((f" {label:<{LABEL_WIDTH}} ", "$text-muted"), *parts)


def heading(title: str, *parts: str | Content | tuple[str, str]) -> list[Content]:
    return [Content(""), Content.assemble((title, "b $primary"), *parts)]


def block(value: Any) -> list[str]:
    """A text of several lines (an instruction, a reason) as printable lines, at most LINES_SHOWN."""
    lines = value.splitlines() if isinstance(value, str) else [value]
    shown = [text(line, 300) for line in lines[:LINES_SHOWN]]
    return shown + ([f"… {len(lines) - LINES_SHOWN} more lines in the ledger"] if len(lines) > LINES_SHOWN else [])


def identity_lines(entry: dict[str, Any]) -> list[Content]:
    """Who decided, on which run, spec, candidate and diff."""
    lines = [field("actor", actor_label(entry, full=True) or "(not recorded)")]
    for label, key in (("decision", "decision"), ("run", "run"), ("agent", "agent"), ("target", "target"),
                       ("candidate", "candidate"), ("tree", "tree"), ("merge", "merge_commit")):
        if entry.get(key) not in (None, ""):
            lines.append(field(label, text(entry.get(key))))
    if entry.get("spec") is not None:
        lines.append(field("spec", text(entry.get("spec"))))
    if entry.get("spec_hash") is not None:
        lines.append(field("spec sha256", text(entry.get("spec_hash"))))
    if entry.get("diff_sha256") is not None:
        lines.append(field("diff sha256", text(entry.get("diff_sha256"))))
    return lines + files_lines(entry.get("files"))


def outcome_lines(row: HistoryRow) -> list[Content]:
    """Why, the level set, and what marks the decision: demoted, forced, reverted since, recovered."""
    entry = row.entry
    reason = [line for line in block(entry.get("reason") or "") if line]
    lines = [field("reason" if n == 0 else "", line) for n, line in enumerate(reason)]
    if entry.get("level") is not None:
        streak = f" (after {text(entry.get('streak'))} in a row)" if entry.get("streak") not in (None, 0) else ""
        lines.append(field("level", text(entry.get("level")), (streak, "$text-muted")))
    if entry.get("demoted") is True:
        cause = text(entry.get("cause"), 60)
        lines.append(field("demoted", ("by policy: autonomy back to manual", "$text-warning"),
                           f" ({cause})" if cause else ""))
    if entry.get("autonomy") is not None:
        lines.append(field("autonomy", text(entry.get("autonomy"), 20), " (accepted by policy, without a human)"))
    if entry.get("grant") is not None:
        lines.append(field("grant", text(entry.get("grant")), ("  the ledger entry that granted it", "$text-muted")))
    if entry.get("forced") is True:
        unready = entry.get("unready")
        why = "; ".join(text(item) for item in unready) if isinstance(unready, list) else text(unready)
        lines.append(field("forced", ("accepted though not ready", "$text-warning"), f": {why}" if why else ""))
    if row.reverted_by:
        lines.append(field("reverted", (f"by entry #{row.reverted_by}", "$text-warning")))
    if entry.get("recovered") is True:
        lines.append(field("recovered", "completed after an interruption (a crash or a kill)"))
    return lines


def files_lines(files: Any) -> list[Content]:
    if files is None:
        return []
    if not isinstance(files, list):
        return [field("files", text(files))]
    shown = ", ".join(text(path, 100) for path in files[:FILES_SHOWN])
    more = f", … {len(files) - FILES_SHOWN} more" if len(files) > FILES_SHOWN else ""
    return [field("files", f"{len(files)} changed" + (f": {shown}{more}" if files else ""))]


def gate_lines(entry: dict[str, Any]) -> list[Content]:
    gates = gates_of(entry)
    if not gates:
        return []
    width = min(24, max(len(text(gate.get("name"), 60)) for gate in gates))
    return [*heading("Gates", f"  {gates_summary(gates)}  ", ("as they stood when decided", "$text-muted")),
            *(gate_line(gate, width) for gate in gates)]


def gate_line(gate: dict[str, Any], width: int = 0) -> Content:
    status = text(gate.get("status"), 20)
    glyph, style = GATE_STYLE.get(status, ("?", "$text-muted"))
    stale = gate.get("stale") is True
    tree = text(gate.get("tree"))[:10] or "none"
    return Content.assemble(
        " ", (f"{glyph} ", style), ((text(gate.get("name"), 60) or "?").ljust(width), "b"), "  ",
        (status or "?", style),
        f"  {text(gate.get('summary'), 120)}" if gate.get("summary") else "", ("  tree ", "$text-muted"), tree,
        ("  stale: ran on another tree" if stale else "", "$text-warning"), findings_tally(gate.get("findings")))


def findings_tally(found: Any) -> Content:
    """A gate's findings record ({count, by_priority, sha256}) as "  findings 3 (P1 2, P2 1)"."""
    if not isinstance(found, dict) or not found.get("count"):
        return Content("")
    by_priority = found.get("by_priority")
    tally = ", ".join(f"{text(p, 8)} {text(n, 8)}" for p, n in by_priority.items() if n) if isinstance(
        by_priority, dict) else ""
    return Content(f"  findings {text(found.get('count'), 10)}" + (f" ({tally})" if tally else ""))


def review_lines(entry: dict[str, Any]) -> list[Content]:
    reviews = [gate for gate in gates_of(entry) if is_review(gate)]
    if not reviews:
        return []
    return [*heading("Review"), *(review_line(gate) for gate in reviews)]


def review_line(gate: dict[str, Any]) -> Content:
    verdict = text(gate.get("verdict"), 40) or f"no verdict ({text(gate.get('status'), 20) or '?'})"
    reviewer = gate.get("reviewer") if isinstance(gate.get("reviewer"), dict) else {}
    who = " · ".join(f"{key} {text(reviewer.get(key), 60)}" for key in ("agent", "model", "provider", "independence")
                     if reviewer.get(key) not in (None, ""))
    return Content.assemble(" ", (text(gate.get("name"), 60) or "review", "b"), "  ",
                            (verdict, VERDICT_STYLE.get(verdict, "$text-warning")),
                            (f"  {who}" if who else "", "$text-muted"))


def findings_lines(entry: dict[str, Any]) -> list[Content]:
    findings = entry.get("findings")
    if not findings:
        return []
    if not isinstance(findings, list):
        return [*heading("Findings"), Content(f" {text(findings)}")]
    return [*heading("Findings", (f"  {len(findings)} sent back", "$text-muted")),
            *(finding_line(item) for item in findings[:ITEMS_SHOWN]), *more_line(findings)]


def finding_line(item: Any) -> Content:
    if not isinstance(item, dict):
        return Content(f" {text(item)}")
    place = text(item.get("path"), 100)
    if place and item.get("line_start") is not None:
        place += f":{text(item.get('line_start'), 10)}"
    said = text(item.get("title") or item.get("body"), 160)
    return Content.assemble(" ", (text(item.get("priority"), 8) or "·", "b"), f" {said}",
                            (f" — {place}" if place else "", "$text-muted"))


def more_line(items: list[Any]) -> list[Content]:
    extra = len(items) - ITEMS_SHOWN
    return [Content.styled(f" … {extra} more in the ledger", "$text-muted")] if extra > 0 else []


def redirect_lines(entry: dict[str, Any]) -> list[Content]:
    instruction, message, comments = entry.get("instruction"), entry.get("message"), entry.get("comments")
    if not (instruction or message or comments):
        return []
    lines = heading("Redirect")
    if message:
        lines += [field("message" if n == 0 else "", line) for n, line in enumerate(block(message))]
    if instruction:
        lines += [field("instruction" if n == 0 else "", line) for n, line in enumerate(block(instruction))]
    if isinstance(comments, list) and comments:
        lines.append(field("comments", f"{len(comments)}"))
        lines += [finding_line(item) for item in comments[:ITEMS_SHOWN]] + more_line(comments)
    elif comments:
        lines.append(field("comments", text(comments)))
    return lines


def revert_lines(entry: dict[str, Any]) -> list[Content]:
    links = (("reverts", "accept hash"), ("reverts_decision", "accept id"), ("reverted_merge", "its merge"),
             ("revert_commit", "commit"))
    present = [(key, label) for key, label in links if entry.get(key) not in (None, "")]
    if not present:
        return []
    return [*heading("Revert", ("  of an accept: its ledger entry, its merge, the revert commit", "$text-muted")),
            *(field(label, text(entry.get(key))) for key, label in present)]


def approval_lines(entry: dict[str, Any]) -> list[Content]:
    """The approvals an accept merged with, or an approve entry's tally: who counted of how many needed."""
    approvals, counted = entry.get("approvals"), entry.get("counted")
    if not approvals and entry.get("needed") is None:
        return []
    tally = f"  {len(counted) if isinstance(counted, list) else '?'} of {text(entry['needed'], 6)} counted" if (
        entry.get("needed") is not None) else ""
    if not isinstance(approvals, list):
        return [*heading("Approvals", tally), Content(f" {text(approvals)}")]
    return [*heading("Approvals", tally or (f"  {len(approvals)}", "$text-muted")),
            *(approval_line(item) for item in approvals[:ITEMS_SHOWN]), *more_line(approvals)]


def approval_line(item: Any) -> Content:
    if not isinstance(item, dict):
        return Content(f" • {text(item)}")
    when = local_time(item.get("time")) if item.get("time") else ""
    candidate = text(item.get("candidate"))[:10]
    return Content.assemble(" • ", text(item.get("actor"), 120) or "?",
                            (f"  {when}" if when else "", "$text-muted"),
                            (f"  candidate {candidate}" if candidate else "", "$text-muted"))


def ledger_lines(entry: dict[str, Any]) -> list[Content]:
    return [*heading("Ledger"), field("seq", text(entry.get("seq")) or "(none)"),
            field("hash", text(entry.get("hash")) or "(none)"), field("prev", text(entry.get("prev")) or "(none)"),
            *([field("anchored", "in git, beside the ledger")] if entry.get("anchored") is True else []),
            field("signature", signature_text(entry))]


def signature_text(entry: dict[str, Any]) -> Content:
    """"signed by <principal> (key …)", or unsigned. Only `orchestra ledger verify` checks the signature."""
    if not entry.get("sig"):
        return Content.styled("unsigned (no signing key)", "$text-muted")
    signer = entry.get("signer")
    if isinstance(signer, dict):
        who = text(signer.get("principal"), 120) or "?"
        key = text(signer.get("key"), 120)
    else:
        who, key = text(signer, 120) or "an unnamed signer", ""
    return Content.assemble(("signed", "$text-success"), f" by {who}", f" (key {key})" if key else "",
                            ("  `orchestra ledger verify` checks it", "$text-muted"))


def other_lines(entry: dict[str, Any]) -> list[Content]:
    """Fields with no place above (a trust or an anchor entry's, or a newer version's), as they are."""
    others = [(key, value) for key, value in entry.items() if key not in SHOWN]
    if not others:
        return []
    return [*heading("Other fields"), *(field(text(key, LABEL_WIDTH - 1), text(value, 300)) for key, value in others)]
