"""Benchmark: what the sandbox costs a run: per process start, per gate, and for the demo as a whole.

Run with the project's venv python:

    .venv/bin/python benchmarks/sandbox_bench.py [--starts N] [--gates N] [--demos N]

In a temporary HOME and repository it spawns one run (a quick shell agent) and, from its jail:
* process start: `command_in(jail, ["/bin/true"])` started and waited for, sandboxed and not (the same
  jail with sandboxing off): medians of N; the cost of the sandbox is the difference. Target <= 20 ms.
* gate run: `run_check` of the command `true` through the supervisor's way of starting a check (its jail,
  a gate's environment), sandboxed and not: medians of N. Target <= 20 ms more.
* the demo: `orchestra demo --no-open` until every run has settled (review or failed with its gates
  done), with bubblewrap and without it (ORCHESTRA_BWRAP pointing nowhere): medians of N.
It prints a table and exits 0 (it does not fail on a missed target).

Figures on the development container (2 cores shared with other work; Python 3.11, bubblewrap 0.8.0),
2026-12-02: see the closing note of the sandbox work; the table's own output is the record.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import ORCHESTRA, git, isolate  # noqa: E402


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "orchestra.toml").write_text('[[agents]]\nname = "quick"\nkind = "shell"\ncommand = "echo x > x.txt"\n\n'
                                         '[[specs]]\nid = "work"\nintent = "x"\n')
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def a_jail(repo: Path):
    from orchestra.core.fleet import Fleet
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import load_score
    from orchestra.core.supervise.jails import jail_of_run
    opened = open_repository(repo)
    fleet = Fleet(opened, load_score(opened.score_path))
    run = fleet.spawn("work")[0]
    deadline = time.monotonic() + 30
    while fleet.get(run.id).state not in ("review", "failed"):
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark's run did not finish")
        time.sleep(0.05)
    run = fleet.get(run.id)
    return fleet, run, jail_of_run(fleet.repo.state_dir, run)


def time_starts(jail, count: int) -> list[float]:
    from orchestra.core.jail import command_in
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(command_in(jail, ["/bin/true"]), check=True)
        times.append(time.perf_counter() - start)
    return times


def time_gates(jail, run, count: int, base: Path) -> list[float]:
    from orchestra.core.gates.commands import run_check
    from orchestra.core.jail import command_in
    from orchestra.core.supervise.jails import gate_environment

    def launch(command: str) -> tuple[list[str], dict[str, str]]:
        return command_in(jail, ["/bin/sh", "-c", command]), gate_environment(jail, run)

    times = []
    for n in range(count):
        start = time.perf_counter()
        gate = asyncio.run(run_check("true", "true", Path(run.worktree), run.tree or "", base / f"gate-{n}.log", 60,
                                     None, launch))
        times.append(time.perf_counter() - start)
        if gate.status != "passed":
            raise SystemExit(f"the benchmark's gate did not pass: {gate.summary}")
    return times


def time_demo(base: Path, count: int, sandboxed: bool) -> list[float]:
    env = {**os.environ}
    if not sandboxed:
        env["ORCHESTRA_BWRAP"] = str(base / "no-bubblewrap-here")
    times = []
    for n in range(count):
        path = base / f"demo-{'on' if sandboxed else 'off'}-{n}"
        start = time.perf_counter()
        subprocess.run([str(ORCHESTRA), "demo", str(path), "--no-open"], env=env, check=True, capture_output=True)
        while True:
            runs = json.loads(subprocess.run([str(ORCHESTRA), "-C", str(path), "runs", "--json"], env=env,
                                             capture_output=True, text=True, check=True).stdout)
            if all(r["state"] in ("review", "failed") and all(g["status"] not in ("pending", "running")
                                                              for g in r["gates"]) for r in runs):
                break
            time.sleep(0.05)
        times.append(time.perf_counter() - start)
        if any(r["sandboxed"] is not sandboxed for r in runs):
            raise SystemExit(f"the demo's runs were not {'sandboxed' if sandboxed else 'unsandboxed'}")
        for r in runs:
            subprocess.run([str(ORCHESTRA), "-C", str(path), "reject", r["id"]], env=env, capture_output=True)
    return times


def row(label: str, times: list[float]) -> str:
    return f"{label:<46} {statistics.median(times) * 1000:8.1f} ms {min(times) * 1000:8.1f} ms {max(times) * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--demos", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    isolate(base)
    fleet, run, jail = a_jail(make_repo(base / "repo"))
    if not jail.sandboxed:
        raise SystemExit(f"this machine cannot sandbox: {jail.reason}")
    plain = dataclasses.replace(jail, sandboxed=False)
    results = [
        ("process start, sandboxed", time_starts(jail, args.starts)),
        ("process start, not sandboxed", time_starts(plain, args.starts)),
        ("gate run (`true`), sandboxed", time_gates(jail, run, args.gates, base)),
        ("gate run (`true`), not sandboxed", time_gates(plain, run, args.gates, base)),
        ("demo until settled, sandboxed", time_demo(base, args.demos, True)),
        ("demo until settled, not sandboxed", time_demo(base, args.demos, False)),
    ]
    fleet.reject(run.id)
    print(f"sandbox benchmark ({os.cpu_count()} cores)\n")
    print(f"{'':<46} {'median':>11} {'min':>11} {'max':>11}")
    for label, times in results:
        print(row(label, times))
    medians = {label: statistics.median(times) for label, times in results}
    print(f"\nthe sandbox adds {1000 * (medians['process start, sandboxed'] - medians['process start, not sandboxed']):.1f} ms "
          f"per process start and {1000 * (medians['gate run (`true`), sandboxed'] - medians['gate run (`true`), not sandboxed']):.1f} ms "
          "per gate run (targets <= 20 ms each)")


if __name__ == "__main__":
    main()
