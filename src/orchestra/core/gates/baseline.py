"""What a check's command measured on another tree than the candidate's, kept between passes.

Coverage, benchmark and proving checks compare the candidate with a run of the same command on the merge
base's tree (for a proof, with the candidate's tests on top). That result depends only on the base's
tree, the command and what was laid on top, so it is kept in the run's gates/ directory (where agents
cannot write) under a key made of those, and a pass whose base has not moved does not run it again.
Only a result worth keeping is kept: a run that could not measure anything is tried again next pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from orchestra.core.base.files import write_atomic
from orchestra.core.base.names import is_check_name
from orchestra.core.gates.evidence import CheckContext, OtherTree
from orchestra.core.git.diffs import tree_of
from orchestra.core.runs.run import Gate


class NoBaseline(Exception):
    """The other tree's result could not be had; the message says why (the gate fails with it)."""


def key_of(ctx: CheckContext, *parts: str) -> str:
    """The key of a result on the merge base's tree: its tree id and parts (the command, what lies on top)."""
    return hashlib.sha256(json.dumps([tree_of(ctx.git_dir, ctx.since), *parts]).encode()).hexdigest()


def kept_path(ctx: CheckContext, label: str, kind: str) -> Path | None:
    """Where the check's result of kind on the tree labelled label is kept (None: nowhere)."""
    name = ctx.check.get("name")
    if ctx.cache_dir is None or not is_check_name(name):
        return None
    return ctx.cache_dir / label / f"{name}.{kind}.json"


def recall(path: Path | None, key: str) -> dict[str, Any] | None:
    """The result kept at path under key, or None."""
    if path is None:
        return None
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key or not isinstance(kept.get("result"), dict):
        return None
    return kept["result"]


def remember(path: Path | None, key: str, result: dict[str, Any]) -> None:
    """Keep result at path under key (the one result kept there)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps({"key": key, "result": result}), mode=0o600)
    except OSError:
        pass  # not kept: the next pass measures again


async def run_other(ctx: CheckContext, other: OtherTree) -> tuple[Gate, Any]:
    """The check's command run on other's tree; NoBaseline when this verifier cannot run one."""
    if ctx.run_elsewhere is None:
        raise NoBaseline("checks cannot run on another tree here (no supervisor)")
    return await ctx.run_elsewhere(other)


def gate_facts(gate: Gate) -> dict[str, Any]:
    """What is kept of a gate on another tree: how it ended and what it printed last."""
    return {"status": gate.status, "exit_code": gate.exit_code, "summary": gate.summary, "passed": gate.passed,
            "failed": gate.failed, "failures": gate.failures[:50], "output_tail": gate.output_tail[-20:],
            "warnings": gate.warnings}


def timed_out(gate: Gate) -> bool:
    return gate.summary.startswith("timed out")
