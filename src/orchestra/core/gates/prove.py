"""The proving gate (`prove = true` on a test check): the tests the candidate adds or changes must fail on
the code it started from, or they prove nothing about the change.

The test files among the changed paths (test_*.py, *_test.py, tests/…, *.test.js, *.spec.ts, *_test.go,
spec/…/*_spec.rb and the like) are laid on the merge base's tree and the check's command runs there. The
gate passes when the command passes on the candidate (the normal gate) and fails on the base. When the
base's failures are known one by one (pytest's or JUnit's), one of them must be in the new tests: a base
that fails for another reason proves nothing either. The base's result is kept per base tree, command and
test contents (see gates.baseline).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from orchestra.core.base.globs import matches_any
from orchestra.core.gates.baseline import (
    NoBaseline,
    gate_facts,
    kept_path,
    key_of,
    recall,
    remember,
    run_other,
    timed_out,
)
from orchestra.core.gates.evidence import CheckContext, OtherTree
from orchestra.core.git.export import tree_listing
from orchestra.core.runs.run import Gate

TEST_FILES = (
    "test_*.py", "*_test.py", "conftest.py", "**/tests/**", "**/__tests__/**",
    "*.test.js", "*.test.ts", "*.test.jsx", "*.test.tsx", "*.spec.js", "*.spec.ts",
    "*_test.go", "**/spec/**/*_spec.rb",
)
NO_TESTS = "no test was added or changed: nothing proves the change"
PASSES_ON_BASE = "the new tests pass on the unchanged base: they prove nothing"


def changed_tests(changed: list[str] | dict[str, Any]) -> list[str]:
    """The changed paths that are test files."""
    return sorted(path for path in changed if matches_any(TEST_FILES, path))


def in_tests(failure: str, tests: list[str]) -> bool:
    """Whether a failing test's name (pytest's path::test, JUnit's dotted.class::test) is in one of tests."""
    where = failure.split("::", 1)[0]
    for path in tests:
        module = path.rsplit(".", 1)[0].replace("/", ".")
        if where == path or where.endswith("/" + path) or path.endswith("/" + where):
            return True
        if where == module or where.startswith(module + ".") or module.endswith("." + where):
            return True
    return False


def unrelated_failures(base: dict[str, Any], tests: list[str]) -> list[str] | None:
    """The base's failing tests, when they are all known and none is in tests; None otherwise."""
    failures = base.get("failures") or []
    if not failures or base.get("failed") != len(failures):
        return None
    return None if any(in_tests(name, tests) for name in failures) else failures


async def judge_prove(ctx: CheckContext, gate: Gate) -> Gate:
    """The gate of a proving check whose command has run on the candidate."""
    gate = await _judge(ctx, gate)
    gate.finished = time.time()  # a run on the base is part of this gate's time
    return gate


async def _judge(ctx: CheckContext, gate: Gate) -> Gate:
    if gate.kind == "command":
        gate.kind = "prove"
    tests = changed_tests(await asyncio.to_thread(ctx.changed_lines))
    gate.details = {**gate.details, "tests": tests, "base_exit": None}
    if not tests:
        return _failed(gate, NO_TESTS)
    if gate.status != "passed":
        gate.summary = f"{gate.summary} on the candidate; not run on the base"
        return gate
    try:
        base = await base_result(ctx, tests)
    except NoBaseline as error:
        return _failed(gate, str(error))
    gate.details.update(base_exit=base["exit_code"], base_summary=base["summary"])
    gate.warnings = gate.warnings + [f"on the base: {warning}" for warning in base.get("warnings") or []]
    candidate_side = f"passes on the candidate ({gate.summary})"
    if base["status"] == "passed":
        return _failed(gate, f"{PASSES_ON_BASE} ({base['summary']})", candidate_side)
    unrelated = unrelated_failures(base, tests)
    if unrelated is not None:
        shown = ", ".join(unrelated[:3]) + (f" and {len(unrelated) - 3} more" if len(unrelated) > 3 else "")
        return _failed(gate, f"the base fails only in other tests ({shown}): the new tests prove nothing",
                       candidate_side)
    ended = "times out" if base.get("timed_out") else f"fails ({base['summary']})"
    gate.summary = f"{candidate_side}; {ended} on the base with the new tests"
    return gate


def _failed(gate: Gate, reason: str, candidate_side: str = "") -> Gate:
    gate.status = "failed"
    gate.summary = f"{candidate_side}, but {reason}" if candidate_side else reason
    gate.details["reason"] = reason
    return gate


async def base_result(ctx: CheckContext, tests: list[str]) -> dict[str, Any]:
    """How the command ends on the merge base's tree with the candidate's tests on top (kept per base
    tree, command and the tests' contents)."""
    check = ctx.check
    listing = await asyncio.to_thread(tree_listing, ctx.git_dir, ctx.tree, tests)
    key = await asyncio.to_thread(key_of, ctx, "prove", check["command"], listing)
    path = kept_path(ctx, "proof", "prove")
    kept = recall(path, key)
    if kept is not None:
        return kept
    other = OtherTree(check, ctx.since, "proof", overlay=tuple(tests), overlay_from=ctx.tree)
    gate, _ = await run_other(ctx, other)
    result = {**gate_facts(gate), "timed_out": timed_out(gate)}
    if not timed_out(gate):
        remember(path, key, result)
    return result
