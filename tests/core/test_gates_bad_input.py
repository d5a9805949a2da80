"""Gates under bad input: a gate that breaks ends as "error" (never pending), logs stay in the run's
directory and under their cap, and a symlink leading out of the repository fails the boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.core.gates.commands import LOG_LIMIT, TAIL_LINES, gate_log_path, run_check
from orchestra.core.gates.verifier import error_gate
from orchestra.core.runs.run import Run
from tests.core.conftest import MakeFleet
from tests.core.helpers import score_text, wait_settled

# --- logs ------------------------------------------------------------------------------------


async def test_a_flood_of_output_is_cut_at_the_limit_and_the_end_is_kept(tmp_path: Path) -> None:
    log_path = tmp_path / "gates" / "flood.log"
    flood = ("yes 'a long line of test output that goes on and on and on and on and on and on' "
             "| head -c 21000000; echo '===== 1 failed, 2 passed in 9.9s ====='; exit 1")
    gate = await run_check("flood", flood, tmp_path, "tree", log_path, timeout=120)

    size = log_path.stat().st_size
    assert LOG_LIMIT < size < LOG_LIMIT + 1024 * 1024
    with open(log_path, "rb") as log:
        log.seek(LOG_LIMIT)
        after = log.read().decode().splitlines()
    dropped = 21_000_000 + len("===== 1 failed, 2 passed in 9.9s =====\n") - LOG_LIMIT
    marker = f"[orchestra: {dropped} bytes of output were not kept; the last {TAIL_LINES} lines follow]"
    assert marker in after
    assert after[-1] == "===== 1 failed, 2 passed in 9.9s ====="
    assert len(after) - after.index(marker) - 1 == TAIL_LINES
    # What the gate shows is unchanged by the cut.
    assert gate.status == "failed" and (gate.failed, gate.passed) == (1, 2)
    assert len(gate.output_tail) == TAIL_LINES and gate.output_tail[-1] == after[-1]


async def test_output_under_the_limit_is_kept_whole_without_a_marker(tmp_path: Path) -> None:
    log_path = tmp_path / "gates" / "small.log"
    await run_check("small", "printf 'one\\ntwo'", tmp_path, "tree", log_path, timeout=30)
    assert log_path.read_bytes() == b"one\ntwo"


@pytest.mark.parametrize("name", ["../../../x", "a/b", "", ".", "..", ".hidden", "x" * 65, None, "a\0b"])
def test_a_log_path_is_refused_for_a_name_that_is_not_a_plain_file_name(tmp_path: Path, name: object) -> None:
    with pytest.raises(ValueError, match="invalid check name"):
        gate_log_path(tmp_path, name)  # type: ignore[arg-type]


def test_a_valid_name_logs_inside_the_run_directory(tmp_path: Path) -> None:
    assert gate_log_path(tmp_path, "lint.sh-2") == tmp_path / "gates" / "lint.sh-2.log"


# --- a verify pass that meets broken input --------------------------------------------------


def test_an_error_gate_says_why_in_one_line() -> None:
    gate = error_gate("lint", "command", "tree", 1.0, OSError("[Errno 24] Too many open files\nmore"))
    assert (gate.name, gate.kind, gate.status, gate.tree) == ("lint", "command", "error", "tree")
    assert gate.summary == "could not verify: [Errno 24] Too many open files"
    assert gate.finished is not None and gate.started == 1.0
    assert error_gate("x", "command", None, 1.0, KeyError()).summary == "could not verify: KeyError"


def run_recorded_with(make_fleet: MakeFleet, repo: Path, tmp_path: Path, spec_change: dict) -> Run:
    """A settled run whose stored spec was changed (as if recorded before today's validation) before
    its agent finished: the verify pass reads the changed spec."""
    fleet = make_fleet(repo, score_text(  # the go-ahead is a file in its worktree: a sandboxed agent sees only that
        {"coder": "while [ ! -e .go ]; do sleep 0.05; done; rm .go; echo x > src/x.py"},
        [{"id": "work", "intent": "x", "verify": [{"name": "ok", "command": "true"}]}]))
    run = fleet.spawn("work")[0]
    fleet.store.update(run.id, lambda stored: stored.spec_config.update(spec_change))
    (Path(run.worktree) / ".go").touch()
    run_id = run.id
    return wait_settled(fleet, run_id)


def test_a_bad_glob_recorded_before_validation_makes_the_boundary_an_error_not_pending(
        repo: Path, tmp_path: Path, make_fleet: MakeFleet) -> None:
    run = run_recorded_with(make_fleet, repo, tmp_path, {"allow": ["src/**", "[z-a]"]})
    assert run.state == "review"
    boundary = run.gates["boundary"]
    assert (boundary.status, boundary.kind, boundary.tree) == ("error", "boundary", run.tree)
    assert boundary.summary == "could not verify: '[z-a]' is not valid (bad character range z-a)"
    assert run.gates["ok"].status == "passed"  # the pass went on to the checks


def test_a_check_that_cannot_run_ends_as_error_and_its_log_is_not_written_elsewhere(
        repo: Path, tmp_path: Path, make_fleet: MakeFleet) -> None:
    run = run_recorded_with(make_fleet, repo, tmp_path, {"verify": [
        {"name": "../../../../escape", "command": "echo hi"},
        {"name": "bad-timeout", "command": "true", "timeout": "soon"},
        {"name": "ok", "command": "true"}]})
    assert run.state == "review"
    escape, timeout, ok = (run.gates[name] for name in ("../../../../escape", "bad-timeout", "ok"))
    assert escape.status == "error" and escape.tree == run.tree
    assert escape.summary.startswith("could not verify: invalid check name '../../../../escape'")
    assert timeout.status == "error" and "soon" in timeout.summary
    assert ok.status == "passed"
    assert not list(repo.parent.rglob("escape.log"))
