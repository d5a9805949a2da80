"""The benchmark gate: a check whose command prints what it measured, compared with the merge base's.

The command prints one number (the last number on its last non-empty output line is taken) or a JSON
object of named numbers (the last output line that is a JSON object). The same command runs on the merge
base's tree (kept per base tree and command; see gates.baseline), and every metric both print is
compared: worse than the base's by more than `tolerance` percent, in the direction `better` says, fails
the gate. Output without a number fails it too, and so does a base that cannot be measured.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from typing import Any

from orchestra.core.base.output import strip_escapes
from orchestra.core.gates.baseline import (
    NoBaseline,
    kept_path,
    key_of,
    recall,
    remember,
    run_other,
    timed_out,
)
from orchestra.core.gates.evidence import CheckContext, OtherTree
from orchestra.core.runs.run import Gate

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
VALUE = "value"  # the name of a number printed alone
SHOWN_METRICS = 3


class NoNumber(ValueError):
    """Output that holds nothing to measure."""


def metrics_of(lines: list[str]) -> dict[str, float]:
    """name → number from a command's output: the last JSON object line's numbers, else the last number
    on the last non-empty line (named "value"). NoNumber when there is neither."""
    for line in reversed(lines):
        found = _json_numbers(strip_escapes(line).strip())
        if found:
            return found
    last = next((strip_escapes(line).strip() for line in reversed(lines) if line.strip()), "")
    numbers = [float(n) for n in _NUMBER.findall(last)]
    numbers = [n for n in numbers if math.isfinite(n)]
    if not numbers:
        raise NoNumber("the command printed no number" + (f" (its last line: {last[:80]!r})" if last else ""))
    return {VALUE: numbers[-1]}


def _json_numbers(text: str) -> dict[str, float] | None:
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(name): float(number) for name, number in value.items()
            if isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)} or None


def change_percent(candidate: float, base: float) -> float | None:
    """How much the candidate differs from the base, in percent of the base (None: the base is 0)."""
    if base == 0:
        return 0.0 if candidate == 0 else None
    return 100.0 * (candidate - base) / abs(base)


def is_worse(candidate: float, base: float, tolerance: float, better: str) -> bool:
    """Whether candidate is worse than base by more than tolerance percent."""
    change = change_percent(candidate, base)
    if change is None:  # from 0: any move in the wrong direction is worse beyond any tolerance
        return candidate > base if better == "lower" else candidate < base
    return change > tolerance if better == "lower" else change < -tolerance


def _fmt_pair(candidate: float, base: float) -> tuple[str, str]:
    """The two numbers with as many decimals as the more precise needs (at most 6 significant digits)."""
    decimals = max(_decimals(candidate), _decimals(base))
    return f"{candidate:.{decimals}f}", f"{base:.{decimals}f}"


def _decimals(value: float) -> int:
    text = f"{value:.6g}"
    if "e" in text:
        return 2
    return len(text.partition(".")[2])


def describe(name: str, candidate: float, base: float, tolerance: float) -> str:
    """E.g. "time 1.92 vs 1.80 (+6.7%, tolerance 5%)"."""
    shown, base_shown = _fmt_pair(candidate, base)
    change = change_percent(candidate, base)
    moved = "from 0" if change is None else f"{change:+.1f}%"
    label = "" if name == VALUE else f"{name} "
    return f"{label}{shown} vs {base_shown} ({moved}, tolerance {tolerance:g}%)"


def compare(candidate: dict[str, float], base: dict[str, float], tolerance: float,
            better: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """(details per metric, the worse ones described, every compared one described: worse first)."""
    details: dict[str, Any] = {}
    worse, fine = [], []
    for name, value in candidate.items():
        if name not in base:
            continue
        change = change_percent(value, base[name])
        details[name] = {"candidate": value, "base": base[name],
                         "change_percent": None if change is None else round(change, 2)}
        text = describe(name, value, base[name], tolerance)
        (worse if is_worse(value, base[name], tolerance, better) else fine).append(text)
    return details, worse, worse + fine


async def judge_benchmark(ctx: CheckContext, gate: Gate) -> Gate:
    """The gate of a benchmark check whose command has run on the candidate."""
    gate = await _judge(ctx, gate)
    gate.finished = time.time()  # a run on the base is part of this gate's time
    return gate


async def _judge(ctx: CheckContext, gate: Gate) -> Gate:
    gate.kind = "benchmark"
    if gate.status != "passed":
        return gate  # the command failed: nothing measured, nothing to compare
    check = ctx.check
    tolerance, better = float(check.get("tolerance", 5.0)), str(check.get("better") or "lower")
    try:
        candidate = metrics_of(gate.output_tail)
        base = await base_metrics(ctx)
    except (NoNumber, NoBaseline) as error:
        return _closed(gate, str(error))
    details, worse, described = compare(candidate, base, tolerance, better)
    if not details:
        return _closed(gate, f"nothing to compare: the candidate printed {', '.join(candidate)}, the base "
                       f"{', '.join(base)}")
    gate.details = {"metrics": details, "tolerance": tolerance, "better": better,
                    "unmatched": sorted(set(candidate) ^ set(base))}
    more = len(described) - SHOWN_METRICS
    gate.summary = " · ".join(described[:SHOWN_METRICS]) + (f" · {more} more" if more > 0 else "")
    gate.status = "failed" if worse else "passed"
    gate.failures = [f"{text}: worse than the base" for text in worse]
    return gate


def _closed(gate: Gate, reason: str) -> Gate:
    gate.status, gate.summary = "failed", reason
    gate.details = {"reasons": [reason]}
    return gate


async def base_metrics(ctx: CheckContext) -> dict[str, float]:
    """What the same command prints on the merge base's tree (kept per base tree and command)."""
    check = ctx.check
    key = await asyncio.to_thread(key_of, ctx, "benchmark", check["command"])
    path = kept_path(ctx, "base", "benchmark")
    kept = recall(path, key)
    if kept is not None and isinstance(kept.get("metrics"), dict):
        return {str(k): float(v) for k, v in kept["metrics"].items() if isinstance(v, (int, float))}
    gate, _ = await run_other(ctx, OtherTree(check, ctx.since, "base"))
    if gate.status != "passed":
        what = "timed out" if timed_out(gate) else f"failed ({gate.summary})"
        raise NoBaseline(f"the command {what} on the merge base: nothing to compare with")
    try:
        metrics = metrics_of(gate.output_tail)
    except NoNumber as error:
        raise NoBaseline(f"on the merge base, {error}") from None
    remember(path, key, {"metrics": metrics, "summary": gate.summary})
    return metrics
