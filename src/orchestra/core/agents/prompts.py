"""What agents are told: the task with their role, the spec's boundaries and checks, and where a redirect starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestra.core.base.findings import Finding
from orchestra.core.runs.run import Run
from orchestra.core.score.roles import role_lines


def boundary_lines(spec_config: dict[str, Any] | None) -> list[str]:
    """The spec's limits and checks, one sentence each."""
    spec = spec_config or {}
    lines = []
    if spec.get("allow"):
        lines.append(f"You may change only files matching: {', '.join(spec['allow'])}.")
    if spec.get("deny"):
        lines.append(f"Never change files matching: {', '.join(spec['deny'])}.")
    checks = [check["command"] for check in spec.get("verify", [])]
    if checks:
        lines.append("Your work is verified with these commands; run them before you finish: "
                     + "; ".join(f"`{command}`" for command in checks))
    return lines


def cli_prompt(run: Run) -> str:
    """The whole task for a coding-agent CLI, which reads its repository's own instructions itself."""
    parts = [f"Task{f' (spec {run.spec})' if run.spec else ''}: {run.task}", *role_lines(run.agent_config),
             *boundary_lines(run.spec_config),
             "Work in the current directory (a git worktree of the repository); a human reviews the result. "
             "Do not ask questions: decide, and say what you assumed."]
    return "\n\n".join(parts)


def task_with_role(run: Run) -> str:
    """The task as a plain command reads it (ORCHESTRA_TASK): the task, then what its role tells it."""
    return "\n\n".join([run.task, *role_lines(run.agent_config)])


def work_summary(run: Run, last_output: list[str]) -> str:
    """What a run did so far, for an agent that starts again after a redirect."""
    if run.changed_paths:
        done = (f"{run.files_changed} file(s) changed (+{run.lines_added} −{run.lines_removed}): "
                + ", ".join(run.changed_paths[:20]) + (" …" if len(run.changed_paths) > 20 else ""))
    else:
        done = "No files were changed yet."
    tail = "\n".join(last_output[-15:])
    return done + (f"\nThe last lines of its output:\n{tail}" if tail else "")


def feedback_text(instruction: str, findings: Sequence[Finding] = (), comments: Sequence[Finding] = ()) -> str:
    """A redirect as the agent reads it: the conductor's instruction, then each finding and line comment
    sent back, with its place, so the agent can go straight to it."""
    parts = [instruction.strip()] if instruction.strip() else []
    if findings:
        parts.append("Findings to address (from review and checks of your last attempt):")
        for n, finding in enumerate(findings, 1):
            origin = finding.source.replace(":", " ")
            parts.append(f"{n}. [{finding.priority}] {finding.place}: {finding.title} ({origin})"
                         + (f"\n   {_indent(finding.body)}" if finding.body.strip() else "")
                         + (f"\n   Suggested replacement:\n   {_indent(finding.suggestion)}" if finding.suggestion else ""))
    if comments:
        parts.append("The conductor's comments on lines of your diff:")
        parts.extend(f"- {comment.place}: {_indent(comment.title if not comment.body else comment.body)}"
                     for comment in comments)
    if not instruction.strip():
        parts.append("Address these, then finish as before.")
    return "\n\n".join(parts)


def _indent(text: str) -> str:
    return "\n   ".join(text.strip().splitlines())
