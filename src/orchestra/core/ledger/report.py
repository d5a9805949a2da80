"""The ledger in words: verify's verdict and one line per entry, as the command line prints them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestra.core.base.canonical import canonical_json
from orchestra.core.ledger.signing import SigningConfig
from orchestra.core.ledger.verify import Verification
from orchestra.core.base.words import plural

UNSIGNED = ("entries are not signed, so verify proves that the chain, the head file, the anchor in git and "
            "git's merge commits agree, but not who wrote an entry: anyone who can write to the repository's "
            ".git can rewrite unsigned entries and recompute all of those. To sign: git config gpg.format ssh, "
            "user.signingkey <key>, gpg.ssh.allowedSignersFile <file>.")


@dataclass(frozen=True)
class Report:
    """What to print on stdout and on stderr."""

    out: str
    err: str


def verify_report(result: Verification, path: Path, signing: SigningConfig, as_json: bool) -> Report:
    """verify's verdict for the command line (JSON on stdout with as_json; the reason on stderr on failure)."""
    caveats = _caveats(result, signing)
    if as_json:
        data = {"ok": result.ok, "path": str(path), "count": result.count, "signed": result.signed,
                "anchor": result.anchor, "problems": list(result.problems), "notes": [*result.notes, *caveats]}
        err = "" if result.ok else f"ledger FAILED verification: {plural(len(result.problems), 'problem')} ({path})"
        return Report(canonical_json(data), err)
    notes = [f"  note: {note}" for note in [*result.notes, *caveats]]
    if result.ok:
        return Report("\n".join([summary(result), *notes]), "")
    lines = [f"ledger FAILED verification ({path}):", *(f"  {problem}" for problem in result.problems), *notes]
    return Report("", "\n".join(lines))


def summary(result: Verification) -> str:
    """The one-line verdict of a ledger that verified."""
    anchored = f"anchored in git at {result.anchor}" if result.anchor else "not anchored in git"
    return f"ledger ok: {plural(result.count, 'entry')} ({result.signed} signed), chain intact, {anchored}"


def _caveats(result: Verification, signing: SigningConfig) -> list[str]:
    caveats = []
    if result.count and result.signed == 0:
        caveats.append(UNSIGNED)
    elif result.signed < result.count:
        unsigned = result.count - result.signed
        caveats.append(f"{plural(unsigned, 'entry')} {'is' if unsigned == 1 else 'are'} not signed "
                       "(--require-signed makes that a failure)")
    if not signing.enabled and result.signed:
        caveats.append("signing is not configured here (gpg.format ssh and user.signingkey): "
                       "new entries will not be signed")
    return caveats


GATE_MARKS = {"passed": "✓", "failed": "✗", "error": "✗", "pending": "…", "running": "…"}


def show_line(entry: dict) -> str:
    """One entry on one line: time, action, run, agent, actor, candidate, the gates as they stood (and the
    review's verdict), why, and its marks."""
    why = entry.get("reason") or entry.get("instruction") or ""
    line = (f"{entry.get('time', '?')}  {entry.get('action', '?'):<8} {entry.get('run') or '-':<5} "
            f"{entry.get('agent', '')} by {entry.get('actor', '?')}  {str(entry.get('candidate', ''))[:10]}")
    gates = gates_words(entry.get("gates"))
    marks = _marks(entry)
    return (line + (f"  {gates}" if gates else "") + (f"  “{why}”" if why else "")
            + (f"  [{'; '.join(marks)}]" if marks else ""))


def gates_words(gates: object) -> str:
    """"check✓ boundary✓ review✗ (changes requested)": each gate's mark as the decision saw it (~ stale)."""
    if not isinstance(gates, list):
        return ""
    words = []
    for gate in gates:
        if not isinstance(gate, dict):
            continue
        mark = "~" if gate.get("stale") else GATE_MARKS.get(str(gate.get("status")), "?")
        verdict = f" ({gate['verdict']})" if gate.get("kind") == "review" and gate.get("verdict") else ""
        words.append(f"{gate.get('name')}{mark}{verdict}")
    return " ".join(words)


def _marks(entry: dict) -> list[str]:
    marks = []
    if entry.get("action") in ("grant", "revoke"):
        marks.append(f"autonomy of {entry.get('spec')}/{entry.get('agent')}: {entry.get('level')}")
    if isinstance(entry.get("host"), dict):  # its agent and gates ran at another host
        marks.append(f"worked at host {entry['host'].get('name')}")
    if entry.get("demoted"):
        marks.append(f"DEMOTED by policy ({entry.get('cause')})")
    if entry.get("autonomy") == "auto":
        marks.append(f"AUTO: accepted by policy, autonomy granted by {entry.get('granted_by')}")
    if entry.get("action") == "approve":
        marks.append(f"approval {len(entry.get('counted') or [])} of {entry.get('needed')}")
    if entry.get("action") == "accept" and entry.get("approvals"):
        marks.append(f"approved by {', '.join(map(str, entry['approvals']))}")
    if entry.get("action") == "advance":  # a workflow's stage approved
        plan = f", plan {str(entry['plan_sha256'])[:12]}" + (" (edited)" if entry.get("plan_edited") else "") \
            if entry.get("plan_sha256") else ""
        marks.append(f"approved stage {entry.get('stage_index')} {entry.get('stage')} of {entry.get('workflow')}{plan}")
    elif isinstance(entry.get("workflow"), dict) and entry.get("action") == "accept":
        flow = entry["workflow"]
        stages = " → ".join(f"{s.get('name')}:{s.get('agent')}" for s in flow.get("stages") or [])
        plan = f", plan {str(flow['plan_sha256'])[:12]}" if flow.get("plan_sha256") else ""
        marks.append(f"workflow {flow.get('name')}: {stages}{plan}")
    if isinstance(entry.get("integration"), dict):  # one accept of a spec's parts together
        parts = [p for p in entry["integration"].get("parts") or [] if isinstance(p, dict)]
        marks.append("integration of " + ", ".join(f"{p.get('part')} ({p.get('run')})" for p in parts))
    if entry.get("rejected_stage"):
        marks.append(f"the {entry['rejected_stage']} stage's work rejected: sent back to it")
    if entry.get("group_decision"):
        group = entry["group_decision"]
        marks.append(f"group {group.get('group')}: {group.get('chosen')} chosen")
    if entry.get("action") == "revert":
        merge, revert = str(entry.get("reverted_merge"))[:10], str(entry.get("revert_commit"))[:10]
        marks.append(f"undoes merge {merge} with {revert}")
    if entry.get("forced"):
        unready = entry.get("unready") or []
        marks.append("FORCED" + (f": {', '.join(map(str, unready))}" if unready else ""))
    if entry.get("recovered"):
        marks.append("recovered after a crash")
    signer = entry.get("signer")
    if entry.get("sig") and isinstance(signer, dict):
        marks.append(f"signed by {signer.get('principal')}")
    return marks
