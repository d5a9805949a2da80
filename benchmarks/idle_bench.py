"""Benchmark: what a run in review costs while it waits for a decision: memory and CPU of what it keeps alive.

Run with the project's venv python:

    .venv/bin/python benchmarks/idle_bench.py [--runs N] [--files N] [--idle SECONDS] [--settle SECONDS]

In a temporary HOME and repository (--files committed files, default 2,000 in 200 directories) it
spawns --runs quick shell agents (default 4) with one cheap check (`true`), waits until every run is in
review with its gates final, then --settle seconds more (default 40: the supervisor turns into its lean
watcher once its gates are final and its worktree has held still for 30 s). For each run it takes everything its supervisor
keeps alive (the supervisor's pid and its descendants) and reports:

* RSS and PSS (from /proc/PID/smaps_rollup; PSS shares the interpreter's pages among the runs),
* CPU over --idle seconds (default 60) of nobody touching anything: utime+stime from /proc/PID/stat,
* what the process is (the lean watcher or the full supervisor).

Targets: <= 15 MB per run, no CPU. It prints medians over the runs and exits 0; the table is the
record. On a machine shared with other work the CPU figure is rough (the memory one is not).

Figures on the development container (2 cores shared with 7 other sessions; Python 3.11), 2026-12-02,
4 runs, defaults; before = the code at HEAD (a full supervisor per run, watching with watchfiles' awatch):

    per run (median)          before                 after (lean watcher)   target
    RSS                       37.8 MB                11.0 MB                <= 15 MB ok
    PSS                       25.6 MB                 4.8 MB
    CPU over 60 s idle        0.08 s (0.14 %)         0.01 s (0.01 %)        none
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import ORCHESTRA, commit_quick_fleet, git, isolate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
FINAL = ("passed", "failed", "error", "skipped")


def make_repo(path: Path, files: int, runs: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for index in range(files):
        folder = path / "src" / f"pkg{index // 100:02d}" / f"mod{index // 10 % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{index % 10}.py").write_text(f"VALUE = {index}\n")
    return commit_quick_fleet(path, runs, lambda n: f"echo edit >> notes{n}.txt", "edit")


def records(repo: Path) -> list[dict]:
    found = []
    for path in sorted((repo / ".git" / "orchestra" / "runs").glob("r*/run.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def in_review(runs: list[dict], count: int) -> bool:
    return len(runs) == count and all(
        run["state"] == "review" and run["gates"] and all(g["status"] in FINAL for g in run["gates"].values())
        for run in runs)


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending += parents.get(current, [])
    return found


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in kB; None when the process has gone."""
    values = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values["Rss"], values["Pss"]


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def what(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "nothing"
    return "lean watcher" if "orchestra.core.supervise.lean_watch" in cmd else "full supervisor"


def measure(repo: Path, idle: float) -> list[dict]:
    """Memory at the end, and CPU over idle seconds, of each run's supervisor and what runs below it
    (a process that ended meanwhile counts for what it used while measured)."""
    supervisors = {run["id"]: run["supervisor_pid"] for run in records(repo) if run.get("supervisor_pid")}
    before = {pid: cpu_ticks(pid) for root in supervisors.values() for pid in alive(descendants(root))}
    time.sleep(idle)
    rows = []
    for run_id, root in supervisors.items():
        pids = alive(descendants(root))
        memory = [m for m in map(memory_kb, pids) if m]
        used = sum(cpu_ticks(pid) - before.get(pid, 0) for pid in pids)
        rows.append({"run": run_id, "processes": len(pids), "what": what(root) if pids else "nothing",
                     "rss": sum(m[0] for m in memory) / 1024, "pss": sum(m[1] for m in memory) / 1024,
                     "cpu": used / TICKS})
    return rows


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}/stat").exists()]


def stop_all(repo: Path) -> None:
    for run in records(repo):
        if run.get("supervisor_pid"):
            try:
                os.kill(run["supervisor_pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=40.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="orchestra-idle-"))
    isolate(base)
    repo = make_repo(base / "repo", args.files, args.runs)
    try:
        subprocess.run([str(ORCHESTRA), "spawn", "work"], cwd=repo, check=True, capture_output=True)
        deadline = time.monotonic() + 300
        while not in_review(records(repo), args.runs):
            if time.monotonic() > deadline:
                raise SystemExit("the runs did not reach review with their gates final")
            time.sleep(0.1)
        time.sleep(args.settle)
        rows = measure(repo, args.idle)
    finally:
        stop_all(repo)
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)
    report(rows, args)
    return 0


def report(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"{args.runs} runs in review, {args.files} files, idle {args.idle:g} s; "
          f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"{'metric (per run, median)':44}{'value':>12}   target")
    rss, pss = statistics.median(r["rss"] for r in rows), statistics.median(r["pss"] for r in rows)
    cpu = statistics.median(r["cpu"] for r in rows)
    print(f"{'RSS of what the run keeps alive':44}{rss:>9.1f} MB   <= 15 MB {'ok' if rss <= 15 else 'missed'}")
    print(f"{'PSS of what the run keeps alive':44}{pss:>9.1f} MB")
    print(f"{f'CPU over {args.idle:g} s idle':44}{cpu:>10.2f} s   ({100 * cpu / args.idle:.3f} % of a core)")
    print(f"{'processes per run':44}{statistics.median(r['processes'] for r in rows):>12g}")
    kinds = [r["what"] for r in rows]
    print("kept alive: " + ", ".join(f"{kinds.count(kind)} x {kind}" for kind in sorted(set(kinds))))


if __name__ == "__main__":
    sys.exit(main())
