"""The benchmark gate: what a command prints, compared with the same command on the merge base's tree;
and end to end through the fleet, in the run's sandbox."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from orchestra.core.gates.benchmark import NoNumber, compare, is_worse, metrics_of
from orchestra.core.jail import probe
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled
from tests.core.test_coverage_gate import Elsewhere, commit_all, verify

PY = sys.executable


def test_the_last_number_on_the_last_line_is_the_measure() -> None:
    assert metrics_of(["warming up 3 rounds", "", "\x1b[1mmedian: 1.92s over 5 runs (p99 2.5)\x1b[0m", "  "]) == {
        "value": 2.5}
    assert metrics_of(["took 12"]) == {"value": 12.0}
    assert metrics_of(["x 1e-3"]) == {"value": 0.001}


def test_the_last_json_object_line_names_the_measures() -> None:
    lines = ['{"time": 1.0}', '{"time": 1.92, "rss_mb": 30, "label": "fast", "ok": true}', "done in 3s"]
    assert metrics_of(lines) == {"time": 1.92, "rss_mb": 30.0}


def test_output_without_a_number_is_refused() -> None:
    with pytest.raises(NoNumber, match="printed no number .*'all good'"):
        metrics_of(["all good", ""])
    with pytest.raises(NoNumber, match="printed no number$"):
        metrics_of([])


def test_worse_means_beyond_the_tolerance_in_the_direction_better_says() -> None:
    assert is_worse(1.92, 1.80, 5, "lower") and not is_worse(1.85, 1.80, 5, "lower")
    assert not is_worse(1.0, 1.80, 5, "lower")  # faster is never worse
    assert is_worse(90, 100, 5, "higher") and not is_worse(96, 100, 5, "higher") and not is_worse(200, 100, 5, "higher")
    assert is_worse(1, 0, 5, "lower") and not is_worse(0, 0, 5, "lower") and not is_worse(-1, 0, 5, "lower")
    details, worse, described = compare({"time": 1.92, "rss": 30.0, "new": 1.0}, {"time": 1.8, "rss": 31.0}, 5, "lower")
    assert details == {"time": {"candidate": 1.92, "base": 1.8, "change_percent": 6.67},
                       "rss": {"candidate": 30.0, "base": 31.0, "change_percent": -3.23}}
    assert worse == ["time 1.92 vs 1.80 (+6.7%, tolerance 5%)"]
    assert described == worse + ["rss 30 vs 31 (-3.2%, tolerance 5%)"]


@pytest.fixture
def speeds(repo: Path) -> tuple[Path, str]:
    """repo whose base holds speed.txt "time 1.80" and "rss 31"; returns the base commit."""
    (repo / "speed.txt").write_text("time 1.80\nrss 31\n")
    return repo, commit_all(repo, "speeds")


def candidate(root: Path, text: str) -> None:
    (root / "speed.txt").write_text(text)
    commit_all(root)


async def test_a_slower_candidate_fails_and_the_base_is_measured_once(speeds: tuple[Path, str]) -> None:
    root, base = speeds
    candidate(root, "time 1.92\nrss 30\n")
    elsewhere = Elsewhere(root / ".git", root.parent / "elsewhere")
    check = {"name": "bench", "command": "printf '{\"time\": %s, \"rss\": %s}\\n' $(cut -d' ' -f2 speed.txt)",
             "benchmark": True}
    gate = await verify(root, base, check, elsewhere)
    assert (gate.kind, gate.status) == ("benchmark", "failed")
    assert gate.summary == "time 1.92 vs 1.80 (+6.7%, tolerance 5%) · rss 30 vs 31 (-3.2%, tolerance 5%)"
    assert gate.failures == ["time 1.92 vs 1.80 (+6.7%, tolerance 5%): worse than the base"]
    assert gate.details["metrics"]["time"] == {"candidate": 1.92, "base": 1.8, "change_percent": 6.67}
    assert [(o.commit, o.label) for o in elsewhere.calls] == [(base, "base")]
    gate = await verify(root, base, {**check, "tolerance": 10}, elsewhere)
    assert gate.status == "passed" and len(elsewhere.calls) == 1  # the base's numbers were kept


async def test_higher_is_better_for_a_rate_and_a_single_number_has_no_name(speeds: tuple[Path, str]) -> None:
    root, base = speeds
    candidate(root, "time 1.70\nrss 31\n")
    check = {"name": "rate", "command": "echo \"ops/s: $(head -1 speed.txt | cut -d' ' -f2)\"", "benchmark": True,
             "better": "higher"}
    gate = await verify(root, base, check, Elsewhere(root / ".git", root.parent / "elsewhere"))
    assert (gate.status, gate.summary) == ("failed", "1.7 vs 1.8 (-5.6%, tolerance 5%)")
    assert gate.details["metrics"] == {"value": {"candidate": 1.7, "base": 1.8, "change_percent": -5.56}}


async def test_no_number_a_failing_base_or_no_common_metric_fail_closed(speeds: tuple[Path, str]) -> None:
    root, base = speeds
    candidate(root, "time 1.80\nrss 31\nfresh 1\n")
    elsewhere = Elsewhere(root / ".git", root.parent / "elsewhere")
    gate = await verify(root, base, {"name": "b1", "command": "echo fast", "benchmark": True}, elsewhere)
    assert (gate.status, gate.summary) == ("failed", "the command printed no number (its last line: 'fast')")
    gate = await verify(root, base, {"name": "b2", "command": "grep fresh speed.txt", "benchmark": True}, elsewhere)
    assert (gate.status, gate.summary) == ("failed", ("the command failed (exit 1) on the merge base: nothing to "
                                                     "compare with"))
    gate = await verify(root, base, {"name": "b3", "benchmark": True, "command":
                                     "grep -q fresh speed.txt && echo '{\"fresh\": 1}' || echo '{\"old\": 1}'"},
                        elsewhere)
    assert (gate.status, gate.summary) == ("failed", "nothing to compare: the candidate printed fresh, the base old")


async def test_a_failing_command_stays_failed_and_the_base_is_not_run(speeds: tuple[Path, str]) -> None:
    root, base = speeds
    candidate(root, "time 1.80\n")
    elsewhere = Elsewhere(root / ".git", root.parent / "elsewhere")
    gate = await verify(root, base, {"name": "b", "command": "echo 1.5; exit 3", "benchmark": True}, elsewhere)
    assert (gate.kind, gate.status, gate.summary, elsewhere.calls) == ("benchmark", "failed", "exit 3", [])


@pytest.mark.skipif(not probe().works, reason="needs bubblewrap: ./dev test installs it")
def test_benchmarks_in_the_sandbox_fail_a_slower_candidate_and_pass_one_within_tolerance(
        repo: Path, make_fleet: MakeFleet) -> None:
    (repo / "bench.py").write_text("import json\nprint('measuring')\n"
                                   "print(json.dumps({'time': float(open('speed.txt').read())}))\n")
    (repo / "speed.txt").write_text("1.80\n")
    commit_all(repo, "bench")
    fleet = make_fleet(repo, score_text({"slower": "echo 1.92 > speed.txt", "close": "echo 1.85 > speed.txt"},
                                        [{"id": "speed", "intent": "keep it fast", "verify": [
                                            {"name": "bench", "command": f"{PY} bench.py", "benchmark": True}]}]))
    started = time.monotonic()
    runs = fleet.spawn("speed", ["slower", "close"])
    slower, close = (wait_settled(fleet, run.id, timeout=90) for run in runs)
    print(f"two benchmark runs settled in {time.monotonic() - started:.1f}s")
    assert slower.sandbox["sandboxed"] is True
    gate = slower.gates["bench"]
    assert (gate.kind, gate.status, gate.tree) == ("benchmark", "failed", slower.tree)
    assert gate.summary == "time 1.92 vs 1.80 (+6.7%, tolerance 5%)"
    gate = close.gates["bench"]
    assert (gate.status, gate.summary) == ("passed", "time 1.85 vs 1.80 (+2.8%, tolerance 5%)")
    log = fleet.store.run_dir(close.id) / "gates" / "base" / "bench.log"
    assert log.read_text() == 'measuring\n{"time": 1.8}\n'
    assert json.loads(log.with_name("bench.benchmark.json").read_text())["result"]["metrics"] == {"time": 1.8}
    assert git(repo, "status", "--porcelain") == ""
