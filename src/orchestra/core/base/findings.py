"""Findings: what a reviewer, a SARIF report, the secret scan or the conductor says about a line.

One shape for all of them, so the diff, the Findings tab, a redirect and the ledger treat them alike.
A finding's `id` is a digest of what it says and where (not of its wording's whitespace), so the same
finding raised again after a rework has the same id: that is how "resolved" and "remaining" are told.

The verdict of a review is computed here, from the findings' priorities, never taken from a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from orchestra.core.base.canonical import content_hash, sha256

PRIORITIES = ("P0", "P1", "P2", "P3")  # P0: must not merge … P3: a nit
DEFAULT_BLOCK_ON = "P1"
APPROVED, CHANGES_REQUESTED = "approved", "changes requested"
# Where a finding comes from: "review:<agent>", "sarif:<check>", "secrets", "comment" (the conductor's).
SOURCES = ("review", "sarif", "secrets", "comment")

# The schema a reviewer's answer must meet (draft 2020-12). Line numbers are the candidate's (new side).
REVIEW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["findings", "explanation"],
    "additionalProperties": False,
    "properties": {
        "explanation": {"type": "string", "description": "overall assessment of the change, a few sentences"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title", "body", "priority", "confidence", "path", "line_start", "line_end"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "body": {"type": "string"},
                    "priority": {"enum": list(PRIORITIES)},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "path": {"type": "string", "minLength": 1},
                    "line_start": {"type": "integer", "minimum": 1},
                    "line_end": {"type": "integer", "minimum": 1},
                    "suggestion": {"type": ["string", "null"],
                                   "description": "replacement text for lines line_start..line_end, or null"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Finding:
    """One thing worth the conductor's attention at a place in the candidate (path None: the whole change)."""

    title: str
    priority: str
    source: str
    body: str = ""
    path: str | None = None
    line_start: int | None = None
    line_end: int | None = None
    confidence: float | None = None
    suggestion: str | None = None
    rule: str | None = None  # a SARIF rule id, a secret type
    level: str | None = None  # SARIF's own level (error, warning, note), kept as the tool said it

    @property
    def id(self) -> str:
        """A short digest of the source, place and title: the same finding raised again has the same id."""
        said = self.body if self.source == "comment" and self.body else self.title  # a comment is all its words
        words = " ".join(said.lower().split())
        key = json.dumps([self.source, self.path, self.line_start, self.rule, words], ensure_ascii=False)
        return sha256(key.encode("utf-8")).hexdigest()[:12]

    @property
    def place(self) -> str:
        """path:line(-line), or "(whole change)"."""
        if self.path is None:
            return "(whole change)"
        if self.line_start is None:
            return self.path
        end = f"-{self.line_end}" if self.line_end and self.line_end != self.line_start else ""
        return f"{self.path}:{self.line_start}{end}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **{k: v for k, v in asdict(self).items() if v is not None}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def blocks(priority: str, block_on: str = DEFAULT_BLOCK_ON) -> bool:
    """Whether a finding of this priority is at or above block_on (P0 is the highest)."""
    return PRIORITIES.index(priority) <= PRIORITIES.index(block_on)


def verdict(findings: Iterable[Finding], block_on: str = DEFAULT_BLOCK_ON) -> str:
    """orchestra's verdict on a review: changes requested when any finding blocks, else approved."""
    return CHANGES_REQUESTED if any(blocks(f.priority, block_on) for f in findings) else APPROVED


def by_priority(findings: Iterable[Finding]) -> list[Finding]:
    """Findings sorted P0 first, then by place."""
    return sorted(findings, key=lambda f: (PRIORITIES.index(f.priority), f.path or "", f.line_start or 0, f.title))


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each priority (every priority present, zeros included)."""
    result = dict.fromkeys(PRIORITIES, 0)
    for finding in findings:
        result[finding.priority] += 1
    return result


def digest(findings: Iterable[Finding]) -> str:
    """sha256 of the findings' canonical JSON, in id order: what a ledger entry records of them."""
    data = sorted((f.to_json() for f in findings), key=lambda item: (item["id"], json.dumps(item, sort_keys=True)))
    return content_hash(data)


def findings_of(items: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Findings from their stored JSON (a gate's `findings`); items that are not findings are skipped."""
    result = []
    for item in items:
        try:
            finding = Finding.from_json(item)
        except TypeError:
            continue
        if finding.priority in PRIORITIES:
            result.append(finding)
    return result
