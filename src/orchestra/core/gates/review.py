"""The review gate without its processes: what a reviewer is asked, how its answer is read, the verdict.

A reviewer gets, for each part of the change (the whole diff when it fits the token budget, else the
files in groups that do): the spec (intent, boundaries, the verify results so far), the diff against
the merge base, and the repository's instructions for agents as the *target* has them (the author
cannot rewrite what its reviewer is told). It answers with JSON meeting REVIEW_SCHEMA. An answer that
is not that JSON, or names a place outside the part it reviewed, is malformed: the reviewer is asked
again with the reason, then the gate fails closed. orchestra, not the model, computes the verdict.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestra.core.base.findings import (APPROVED, DEFAULT_BLOCK_ON, PRIORITIES, REVIEW_SCHEMA, Finding,
                                          counts, verdict)
from orchestra.core.runs.run import Gate, Run

CHARS_PER_TOKEN = 4  # a rough, conservative estimate for code; only used to cut a diff into parts
OVERHEAD_TOKENS = 3_000  # what the prompt around the diff takes, instructions included
MAX_EXPLANATION = 4_000


class MalformedReview(ValueError):
    """A reviewer's answer that is not the findings JSON; the message says what was wrong, for a retry."""


@dataclass(frozen=True)
class Part:
    """One request's worth of the diff: whole files (or one file's hunks, when a file alone is too big)."""

    paths: tuple[str, ...]
    diff: str
    index: int = 1
    of: int = 1


@dataclass
class ReviewOutcome:
    """What the reviewer said about every part, and what it cost."""

    findings: list[Finding] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    error: str | None = None  # why the review could not be completed (the gate fails closed)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0
    attempts: int = 0


def split_diff(diff: str) -> list[tuple[str, str]]:
    """(path, that file's diff) for each file of a unified git diff, in order."""
    files: list[tuple[str, str]] = []
    starts = [m.start() for m in re.finditer(r"^diff --git ", diff, flags=re.MULTILINE)]
    for i, start in enumerate(starts):
        chunk = diff[start:starts[i + 1] if i + 1 < len(starts) else len(diff)]
        files.append((_path_of(chunk), chunk))
    return files


def _path_of(chunk: str) -> str:
    for line in chunk.splitlines()[:8]:
        if line.startswith("+++ ") and line[4:] != "/dev/null":
            return _unquote(line[4:]).removeprefix("b/")
    for line in chunk.splitlines()[:8]:
        if line.startswith("--- ") and line[4:] != "/dev/null":
            return _unquote(line[4:]).removeprefix("a/")
    head = chunk.split("\n", 1)[0]
    return head.rsplit(" b/", 1)[-1] if " b/" in head else head


def _unquote(token: str) -> str:
    from orchestra.core.git.diffparse import unquote_path  # parsing only: no git is run
    return unquote_path(token)


def parts_of(diff: str, budget_tokens: int) -> list[Part]:
    """The diff cut into parts that each fit budget_tokens (less the prompt's own): whole files together
    while they fit; a file bigger than a part on its own, cut at its hunks."""
    room = max(1_000, budget_tokens - OVERHEAD_TOKENS) * CHARS_PER_TOKEN
    groups: list[tuple[list[str], list[str]]] = []
    size = room + 1
    for path, chunk in split_diff(diff):
        pieces = [chunk] if len(chunk) <= room else _hunks(chunk, room)
        for piece in pieces:
            if size + len(piece) > room:
                groups.append(([], []))
                size = 0
            paths, texts = groups[-1]
            if path not in paths:
                paths.append(path)
            texts.append(piece)
            size += len(piece)
    parts = [Part(tuple(paths), "".join(texts)) for paths, texts in groups if texts]
    return [Part(p.paths, p.diff, i, len(parts)) for i, p in enumerate(parts, 1)]


def _hunks(chunk: str, room: int) -> list[str]:
    """One file's diff in pieces of at most room characters, each with the file's header, cut at hunks
    (a single hunk bigger than room is cut at lines, and says so)."""
    header, _, body = chunk.partition("\n@@")
    header += "\n"
    hunks = ["@@" + h for h in ("\n@@" + body).split("\n@@")[1:]] if body else []
    pieces, current = [], ""
    for hunk in hunks:
        hunk = hunk if hunk.endswith("\n") else hunk + "\n"
        while len(hunk) > room:
            cut = hunk.rfind("\n", 0, room) + 1 or room
            pieces.append(header + current + hunk[:cut] + "\\ (orchestra: this hunk continues in the next part)\n")
            current, hunk = "", hunk[cut:]
        if current and len(header) + len(current) + len(hunk) > room:
            pieces.append(header + current)
            current = ""
        current += hunk
    if current or not pieces:
        pieces.append(header + current)
    return pieces


PRIORITY_GUIDE = ("Priorities: P0 = must not merge (breaks things, security hole, data loss); P1 = should be fixed "
                  "before merging; P2 = worth fixing, not blocking; P3 = a nit or a question.")


def answer_format() -> list[str]:
    """How findings are answered: one JSON object meeting REVIEW_SCHEMA (a reviewer's, a security agent's)."""
    return ["Answer with ONE JSON object and nothing else (no prose, no code fence), meeting this JSON schema:",
            json.dumps(REVIEW_SCHEMA, separators=(",", ":")),
            'If you find nothing worth reporting, answer {"findings": [], "explanation": "…why it looks right…"}.']


def system_prompt(reviewer: str, instructions: str) -> str:
    lines = [
        f"You are {reviewer}, a code reviewer. Another AI agent wrote the change below; a human conductor "
        "decides whether to merge it, and reads your findings first. You cannot change any file.",
        "Review the change against its spec: is the intent achieved, correctly and completely, within its "
        "boundaries? Look for bugs, security problems, data loss, missing or wrong tests, and anything the "
        "conductor must know. Do not report style nits unless they hide a problem.",
        PRIORITY_GUIDE,
        "Each finding names the path and the line range in the NEW version of the file (the + side of the "
        "diff) and may suggest replacement text for exactly those lines. Confidence is 0..1.",
        *answer_format(),
    ]
    if instructions.strip():
        lines.append("\nThe repository's own instructions for agents (the target branch's), which the change "
                     "should follow:\n\n" + instructions.strip())
    return "\n".join(lines)


def user_prompt(run: Run, part: Part, gate_lines: Sequence[str]) -> str:
    spec = run.spec_config or {}
    lines = [f"Task{f' (spec {run.spec})' if run.spec else ''}: {run.task}"]
    if spec.get("allow"):
        lines.append(f"Allowed paths: {', '.join(spec['allow'])}")
    if spec.get("deny"):
        lines.append(f"Denied paths: {', '.join(spec['deny'])}")
    if gate_lines:
        lines.append("Verification results so far:\n" + "\n".join(f"- {line}" for line in gate_lines))
    if part.of > 1:
        lines.append(f"The change is large: this is part {part.index} of {part.of}; it holds only these files: "
                     + ", ".join(part.paths) + ". Report only on them.")
    lines.append("The diff against the merge base:\n\n" + part.diff)
    return "\n\n".join(lines)


def gate_lines(run: Run, before: Iterable[str]) -> list[str]:
    """One line per gate already run on the candidate's tree (the reviewer's view of the evidence)."""
    out = []
    for name in before:
        gate = run.gates.get(name)
        if gate is None or gate.is_stale(run.tree) or gate.kind == "review":
            continue
        detail = f": {'; '.join(gate.failures[:5])}" if gate.failures else ""
        out.append(f"{name} ({gate.kind}) {gate.status}, {gate.summary}{detail}"[:400])
    return out


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*?)\n```\s*$", re.DOTALL)


def parse_answer(text: str, part: Part, source: str) -> tuple[list[Finding], str]:
    """The findings and explanation in a reviewer's answer; MalformedReview saying what is wrong."""
    return parse_findings(text, source, part.paths)


def parse_findings(text: str, source: str, paths: Sequence[str] | None = None) -> tuple[list[Finding], str]:
    """The findings and explanation in an answer meeting REVIEW_SCHEMA, each at one of paths (None: at any
    path inside the repository); MalformedReview saying what is wrong."""
    from jsonschema import Draft202012Validator

    data = _json_object(text)
    errors = sorted(Draft202012Validator(REVIEW_SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise MalformedReview(f"the answer does not meet the schema at {where}: {first.message[:300]}")
    findings = []
    for n, item in enumerate(data["findings"]):
        if item["line_end"] < item["line_start"]:
            raise MalformedReview(f"findings/{n}: line_end {item['line_end']} is before line_start {item['line_start']}")
        path = item["path"].removeprefix("b/").removeprefix("./")
        if paths is not None and path not in paths:
            raise MalformedReview(f"findings/{n}: {path!r} is not a file of this change (its files: "
                                  f"{', '.join(paths[:20])})")
        if path.startswith("/") or ".." in path.split("/"):
            raise MalformedReview(f"findings/{n}: {path!r} is not a path relative to the repository root")
        findings.append(Finding(title=" ".join(item["title"].split())[:200], priority=item["priority"],
                                source=source, body=item["body"].strip(), path=path, line_start=item["line_start"],
                                line_end=item["line_end"], confidence=float(item["confidence"]),
                                suggestion=item.get("suggestion")))
    return findings, data["explanation"].strip()


def _json_object(text: str) -> dict[str, Any]:
    """The one JSON object of an answer, tolerating a code fence or an envelope (claude -p, gemini -p put
    the model's text in "result" / "response")."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        data = json.loads(stripped)
    except ValueError:
        start, end = stripped.find("{"), stripped.rfind("}")
        if start < 0 or end <= start:
            raise MalformedReview("the answer holds no JSON object") from None
        try:
            data = json.loads(stripped[start:end + 1])
        except ValueError as error:
            raise MalformedReview(f"the answer is not valid JSON ({error.msg} at character {error.pos})") from None
    if isinstance(data, dict) and "findings" not in data:
        for key in ("result", "response", "content", "output"):
            inner = data.get(key)
            if isinstance(inner, str) and "{" in inner:
                return _json_object(inner)
            if isinstance(inner, dict) and "findings" in inner:
                return inner
    if not isinstance(data, dict):
        raise MalformedReview(f"the answer is JSON but not an object (a {type(data).__name__})")
    return data


def retry_message(reason: str) -> str:
    return (f"Your answer could not be used: {reason}. Answer again with ONE JSON object meeting the schema, "
            "and nothing else.")


def findings_gate(name: str, tree: str, agent: str, found: list[Finding], explanation: str,
                  block_on: str = DEFAULT_BLOCK_ON) -> Gate:
    """The gate of an agent whose role is to report findings, not to change code (a security agent): its
    findings, failed when one is at or above block_on."""
    now = time.time()
    gate = Gate(name=name, kind="findings", tree=tree, started=now, finished=now,
                findings=[f.to_json() for f in found],
                details={"agent": agent, "explanation": explanation[:MAX_EXPLANATION]})
    blocking = [f for f in found if PRIORITIES.index(f.priority) <= PRIORITIES.index(block_on)]
    gate.status = "failed" if blocking else "passed"
    tally = ", ".join(f"{n} {p}" for p, n in counts(found).items() if n)
    gate.summary = f"{len(found)} finding(s)" + (f" ({tally})" if tally else "")
    gate.failures = [f"{f.priority} {f.place}: {f.title}" for f in blocking][:20]
    return gate


def review_gate(name: str, tree: str, reviewer: Mapping[str, Any], outcome: ReviewOutcome,
                config: Mapping[str, Any], started: float) -> Gate:
    """The gate of one reviewer on tree: its verdict (computed here), findings and record; fail-closed
    (status "error") when the review could not be completed."""
    block_on = str(config.get("block_on") or DEFAULT_BLOCK_ON)
    maker, critic = config.get("author_vendor"), reviewer.get("vendor")
    same = maker is not None and maker == critic
    details = {"agent": reviewer.get("name"), "kind": reviewer.get("kind"), "preset": reviewer.get("preset"),
               "model": reviewer.get("model"), "provider": critic, "author_provider": maker,
               "independence": config.get("independence", "provider"), "same_provider": same,
               "block_on": block_on, "prompt_tokens": outcome.prompt_tokens,
               "completion_tokens": outcome.completion_tokens, "cost": outcome.cost, "attempts": outcome.attempts,
               "explanation": "\n\n".join(outcome.explanations)[:MAX_EXPLANATION]}
    gate = Gate(name=name, kind="review", tree=tree, started=started, finished=time.time(), details=details)
    if outcome.error is not None:
        gate.status = "error"
        gate.summary = f"no verdict: {outcome.error}"[:300]
        return gate
    gate.findings = [f.to_json() for f in outcome.findings]
    gate.verdict = verdict(outcome.findings, block_on)
    gate.status = "passed" if gate.verdict == APPROVED else "failed"
    tally = ", ".join(f"{n} {p}" for p, n in counts(outcome.findings).items() if n)
    gate.summary = gate.verdict + (f" ({tally})" if tally else "") + (" · same provider" if same else "")
    gate.failures = [f"{f.priority} {f.place}: {f.title}" for f in outcome.findings
                     if PRIORITIES.index(f.priority) <= PRIORITIES.index(block_on)][:20]
    return gate
