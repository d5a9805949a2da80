"""The review screen's long texts (content markup): gate details, reviewers' verdicts, the spec, git warnings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textual.markup import escape, to_content

from orchestra.core.base.findings import counts, findings_of
from orchestra.core.base.names import is_check_name
from orchestra.core.gates.commands import gate_log_path
from orchestra.core.gates.failures import GateOutput
from orchestra.core.runs.workflow import awaiting_approval, label
from orchestra.core.runs.run import Gate, Run
from orchestra.ui.format import compact, event_line, gate_label, gate_text

_HIDDEN_DETAILS = {"explanation", "agent", "model", "provider", "same_provider"}


def plain_lines(events: list[dict]) -> list[str]:
    """Events as the plain lines the output log shows."""
    return [to_content(line).plain for line in map(event_line, events) if line is not None]


def gate_details(run: Run, outputs: Mapping[str, GateOutput] | None = None, run_dir: Path | None = None) -> str:
    """What the agent did to git (if it left its branch), then each gate with its status, tree and failures;
    a reviewer's verdict, who reviewed with which model, and why; a scan's or a check's own figures.
    A failed check shows its failing tests' own output once read (outputs, by gate name; see GateOutput),
    and, given the run's directory, where its full log is."""
    parts = [*git_warnings(run)]
    if not run.gates:
        return "\n".join([*parts, "[$text-muted]No gate results yet: gates run when the agent finishes.[/]"])
    checks = {c.get("name") for c in (run.spec_config or {}).get("verify", []) if isinstance(c, dict)}
    for gate in run.gates.values():
        parts.extend(gate_lines(run, gate))
        if gate.name in checks:
            output = (outputs or {}).get(gate.name)
            # First: with 40 failures below, the way to the whole output must not need scrolling.
            if run_dir is not None and is_check_name(gate.name) and gate.status not in ("pending", "error"):
                missing = " [$warning](not found)[/]" if output is not None and output.source == "missing" else ""
                parts.append(f"  [$text-muted]full log:[/] {escape(str(gate_log_path(run_dir, gate.name)))}{missing}")
            parts.extend(check_output_lines(gate, output, reading=run_dir is not None))
        elif gate.failures:
            parts.extend(failure_names(gate, gate.failures))
        parts.append("")
    return "\n".join(parts)


def gate_lines(run: Run, gate: Gate) -> list[str]:
    """A gate's badge, tree and staleness, its warnings, a verdict or figures, and its findings."""
    label = gate_label(gate, run.tree)
    tree = f"tree {gate.tree[:10]}" if gate.tree else ""
    stale = " [$warning](stale: the worktree changed since)[/]" if label == "stale" else ""
    summary = f"  {escape(gate.summary)}" if gate.summary and gate.kind not in ("command", "boundary", "review") else ""
    parts = [f"{gate_text(gate, run.tree, detailed=True).markup}{summary}  [$text-muted]{tree}[/]{stale}"]
    parts.extend(f"  [$warning]⚠ {escape(warning)}[/]" for warning in gate.warnings)
    if gate.kind == "review":
        parts.extend(review_lines(gate))
    elif gate.kind in ("sarif", "coverage", "benchmark", "secrets") or gate.details:
        parts.extend(detail_lines(gate.details))
    if gate.findings and gate.kind != "review":
        parts.append(f"  {findings_tally(gate)}")
    return parts


def failure_names(gate: Gate, names: list[str]) -> list[str]:
    title = "outside the boundary:" if gate.kind == "boundary" else "failing:"
    return [f"  [$error]{title}[/]", *(f"    {escape(name)}" for name in names)]


FAILURES_SHOWN = 100  # failing tests whose output the tab shows; the full log has the rest
FAILURE_LINES = 40  # lines of one failing test's output shown (its last: the assertion is at the end)


def check_output_lines(gate: Gate, output: GateOutput | None, reading: bool) -> list[str]:
    """A verify check's failing tests: each one's message and output when its log or report was read,
    else their names and the output's last lines (saying the log is being read, when it is)."""
    if gate.status != "failed":
        return failure_names(gate, gate.failures) if gate.failures else []
    if output is None or output.source == "missing":
        lines = failure_names(gate, gate.failures) if gate.failures else []
        if gate.output_tail:
            lines.append("  [$text-muted]last lines of output:[/]")
            lines.extend(f"    [$text-muted]{escape(line)}[/]" for line in gate.output_tail[-15:])
        if reading and output is None:
            lines.append("  [$text-muted]reading the full log…[/]")
        return lines
    lines = [*_failure_lines(output), *_tail_lines(output)]
    shown = {failure.name for failure in output.failures}
    rest = [name for name in gate.failures if name not in shown]
    if rest and output.failures:
        lines.extend(failure_names(gate, rest))
    elif rest:
        lines[:0] = failure_names(gate, rest)
    if output.cut:
        lines.append(f"  [$text-muted]only the end of the log was read (its last {_size(output.read)} "
                     f"of {_size(output.size)})[/]")
    return lines


def _failure_lines(output: GateOutput) -> list[str]:
    failures = output.failures
    if not failures:
        return []
    where = "the JUnit report" if output.source == "junit" else "the log"
    tests = "test" if len(failures) == 1 else "tests"
    lines = [f"  [$error]{len(failures)} failing {tests}[/] [$text-muted](their own output, from {where})[/]"]
    for failure in failures[:FAILURES_SHOWN]:
        message = f"  [$error]{escape(failure.message)}[/]" if failure.message else ""
        lines.append(f"  [b $error]✗ {escape(failure.name)}[/]{message}")
        text = failure.text.splitlines()
        if len(text) > FAILURE_LINES:
            lines.append(f"    [$text-muted]… {len(text) - FAILURE_LINES} lines above: see the full log[/]")
        lines.extend(f"    [$text-muted]│[/] {escape(line)}" for line in text[-FAILURE_LINES:])
    if len(failures) > FAILURES_SHOWN:
        more = len(failures) - FAILURES_SHOWN
        lines.append(f"  [$text-muted]and {more} more failing test{'s' if more != 1 else ''}: see the full log[/]")
    return lines


def _tail_lines(output: GateOutput) -> list[str]:
    if not output.lines:
        return []
    shown = "line" if len(output.lines) == 1 else f"{len(output.lines)} lines"
    return [f"  [$text-muted]last {shown} of output (no failing test's own output found):[/]",
            *(f"    {escape(line)}" for line in output.lines)]


def _size(count: int) -> str:
    """1234567 bytes as "1.2 MB", 20480 as "20 KB"."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    return f"{max(1, round(count / 1000))} KB"


def review_lines(gate: Gate) -> list[str]:
    """A reviewer's verdict, who (model, provider, cost), a "same provider" stamp, and the explanation."""
    details = gate.details
    verdict = gate.verdict or f"no verdict ({gate.status})"
    style = {"approved": "$text-success", "changes requested": "$text-error"}.get(gate.verdict or "", "$warning")
    who = [f"reviewer [b]{escape(str(details.get('agent') or gate.name.removeprefix('review-')))}[/b]",
           f"model {escape(str(details.get('model') or details.get('preset') or details.get('kind') or '?'))}",
           f"provider {escape(str(details.get('provider') or details.get('vendor') or 'unknown'))}"]
    tokens = (details.get("prompt_tokens") or 0) + (details.get("completion_tokens") or 0)
    if tokens:
        who.append(f"{compact(tokens)} tok")
    if details.get("cost") is not None:
        who.append(f"${details['cost']:.2f}")
    lines = [f"  verdict [b {style}]{escape(verdict)}[/]  {findings_tally(gate)}", "  " + " · ".join(who)]
    if details.get("same_provider"):
        lines.append(f"  [b $text-warning]⚠ SAME PROVIDER[/] [$text-warning]as the author "
                     f"({escape(str(details.get('author_provider') or '?'))}): not an independent second opinion[/]")
    explanation = str(details.get("explanation") or "").strip()
    if explanation:
        lines.extend(f"  [$text-muted]│[/] {escape(line)}" for line in explanation.splitlines())
    return lines


def findings_tally(gate: Gate) -> str:
    """"3 findings: P1 2 · P2 1 (5 lists them)", or "no findings"."""
    found = findings_of(gate.findings)
    if not found:
        return "[$text-muted]no findings[/]"
    tally = " · ".join(f"{priority} {count}" for priority, count in counts(found).items() if count)
    return f"{len(found)} finding{'s' if len(found) != 1 else ''}: {tally}"


def detail_lines(details: dict[str, Any]) -> list[str]:
    """A check's own figures (coverage percentages, benchmark numbers, what a scan looked at), in one line."""
    facts = [f"[$text-muted]{escape(str(key).replace('_', ' '))}[/] {escape(_shown(value))}"
             for key, value in details.items()
             if key not in _HIDDEN_DETAILS and value is not None and value not in ("", [], {})]
    return ["  " + " · ".join(facts)] if facts else []


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in list(value.items())[:8])
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_shown, value[:8])) + (f" (+{len(value) - 8} more)" if len(value) > 8 else "")
    return str(value)[:200]


def git_warnings(run: Run) -> list[str]:
    """The agent's moves outside its branch, the commits kept for it, a missing sandbox and a kept worktree,
    as warnings."""
    lines = [f"[$warning]⚠ {escape(item['what'])}[/]" for item in run.escapes]
    if run.sandbox and not run.sandbox.get("sandboxed"):
        lines.append(f"[$warning]⚠ not sandboxed: {escape(run.sandbox.get('why_not') or 'the sandbox is off')}; "
                     "the agent could read and write what you can[/]")
    if run.kept:
        lines.append(f"[$warning]⚠ worktree kept: {escape(run.kept['reason'])}[/]")
        lines.extend(f"    {escape(path)}" for path in run.kept.get("paths", [])[:20])
    return [*lines, ""] if lines else []


def spec_details(run: Run, plan: str | None = None) -> str:
    """The task and, for a spec, its boundaries and verification commands; its workflow's stages and plan; then
    any redirects."""
    lines = [f"[b]{'Spec ' + escape(run.spec) if run.spec else 'Free-text task'}[/b]", "", escape(run.task), ""]
    spec = run.spec_config or {}
    if spec:
        lines.append(f"[b]allow[/b]  {escape(', '.join(spec.get('allow') or ['(everything)']))}")
        lines.append(f"[b]deny[/b]   {escape(', '.join(spec.get('deny') or ['(nothing)']))}")
        lines.append("[b]verify[/b]")
        lines.extend(f"  {escape(c['name'])}: {escape(c['command'])}" for c in spec.get("verify", []))
    lines += workflow_lines(run, plan)
    if run.redirects:
        lines += ["", "[b]Redirects[/b]"] + [f"  {n}. {escape(text)}" for n, text in enumerate(run.redirects, 1)]
    lines += ["", f"[$text-muted]branch {escape(run.branch)} · base {run.base[:10]} · worktree {escape(run.worktree)}[/]"]
    return "\n".join(lines)


def workflow_lines(run: Run, plan: str | None) -> list[str]:
    """The run's workflow: each stage with its agent and how it went, then the plan (markup)."""
    flow = run.workflow
    if not flow:
        return []
    outcomes: dict[str, str] = {}
    for entry in flow.get("log") or []:
        outcomes[str(entry.get("stage"))] = (f"approved by {entry['approved_by']}" if entry.get("approved_by")
                                             else str(entry.get("outcome", "")))
    lines = ["", f"[b]Workflow {escape(str(flow.get('name')))}[/b]  {escape(label(run))} · {flow.get('status')}"]
    for number, stage in enumerate(flow.get("stages") or [], 1):
        here = "▸" if number == flow.get("at", 0) + 1 else " "
        role = f" ({stage['role']})" if stage.get("role") else ""
        done = outcomes.get(stage["name"], "")
        lines.append(f" {here}{number}. {escape(stage['name'])}: {escape(stage['agent'])}{escape(role)}"
                     + (f"  [$text-muted]{escape(done)}[/]" if done else ""))
    if plan is not None:
        approved = flow.get("plan") or {}
        state = (f"approved by {approved.get('approved_by')}" if approved else
                 "waits for your approval: a approves it, e edits it, d asks for another" if awaiting_approval(run)
                 else "not approved")
        lines += ["", f"[b]Plan[/b]  [$text-muted]{escape(state)}[/]", escape(plan.rstrip())]
    return lines
