"""Benchmark: counting how far every run is behind its target (`fleet.update.refresh_behind`).

Run with the project's venv python:

    .venv/bin/python benchmarks/behind_bench.py [--runs N] [--history H] [--repeat K]

It builds, in a temporary directory, a repository whose main branch has H commits and N run records
(written directly, each based on a different commit of main, undecided), then times refresh_behind:
the first count (one `git rev-list --count` per run, and each count written on its run), a second
call with nothing moved (no git call for any run: the counts are kept with the target's commit they
were taken against), and a call after main moved on by one commit (one git call per run again).
Medians of K repetitions (each repetition starts from fresh records), in milliseconds.

Figures on the development container (2 cores shared with other sessions' tests, so rough),
2026-12-02, 50 runs on a 2,000-commit main, medians of 5:

    refresh_behind (50 runs)          median ms   per run
    first count                            1070     21.4
    nothing moved (kept counts)              12      0.24
    after the target moved                  981     19.6
      of which git alone                    630     12.6

The rest of a count's cost is writing it on its run (the state file is written atomically, fsynced);
it runs in a worker thread of the UI, never on its event loop.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from benchkit import git, isolate  # noqa: E402


def make_history(root: Path, commits: int) -> list[str]:
    """main with `commits` commits (made with fast-import: quick), their ids oldest first."""
    git(root, "init", "-q", "-b", "main")
    stream = []
    for number in range(commits):
        data = f"line {number}\n"
        stream.append(f"commit refs/heads/main\nmark :{number + 1}\ncommitter B <b@example.test> {1_700_000_000 + number} "
                      f"+0000\ndata 2\nc\n" + (f"from :{number}\n" if number else "")
                      + f"M 100644 inline NEWS\ndata {len(data)}\n{data}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input="".join(stream), text=True, check=True)
    git(root, "reset", "-q", "--hard", "main")
    return git(root, "rev-list", "--reverse", "main").split()


def write_runs(fleet, bases: list[str], count: int) -> None:
    from orchestra.core.runs.run import Run
    for number in range(count):
        run_id = f"r{number + 1}"
        run = Run(id=run_id, agent="a", spec=None, task="t", branch=f"orchestra/task/{run_id}/a", worktree="/nowhere",
                  base=bases[(number * 37) % len(bases)], target="main", agent_config={}, spec_config=None,
                  state="review")
        fleet.store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        fleet.store.save(run)


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        isolate(Path(tmp))
        from orchestra.core.fleet import Fleet
        from orchestra.core.fleet.update import refresh_behind
        from orchestra.core.git.repo import open_repository
        from orchestra.core.git.update import behind_count
        root = Path(tmp) / "repo"
        root.mkdir()
        bases = make_history(root, args.history)
        fleet = Fleet(open_repository(root), None)
        first, kept, moved, counting = [], [], [], []
        for _ in range(args.repeat):
            tip = git(root, "rev-parse", "main")
            counting.append(timed(lambda: [behind_count(root, base, tip) for base in
                                           (bases[(n * 37) % len(bases)] for n in range(args.runs))]))
            write_runs(fleet, bases, args.runs)
            first.append(timed(lambda: refresh_behind(fleet)))
            kept.append(timed(lambda: refresh_behind(fleet)))
            (root / "NEWS").write_text(f"moved {len(moved)}\n")
            git(root, "commit", "-q", "-am", "main moves on")
            moved.append(timed(lambda: refresh_behind(fleet)))
    print(f"refresh_behind ({args.runs} runs, main of {args.history} commits), medians of {args.repeat}")
    print(f"{'':32}{'median ms':>10}{'per run':>10}")
    for label, values in (("first count", first), ("nothing moved (kept counts)", kept),
                          ("after the target moved", moved), ("  of which git alone", counting)):
        median = statistics.median(values)
        print(f"{label:<32}{median:>10.1f}{median / args.runs:>10.2f}")


if __name__ == "__main__":
    main()
