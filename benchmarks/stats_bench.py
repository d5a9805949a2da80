"""Benchmark: `orchestra stats` over a 100,000-entry ledger (issue 12: <= 2 s).

Run with the project's venv python (it finds `orchestra` next to it):

    .venv/bin/python benchmarks/stats_bench.py [--entries N] [--runs K] [--keep DIR]

It builds, in a temporary directory (or DIR, kept for timing the command afterwards), a repository whose
ledger holds N entries the size of the fleet's: ledger_bench's entries (a fifth of them accepts with real
merge commits, the rest rejects and redirects, ~1.4 KB each), each also naming its group, when its run
entered review and, for one run in three, an llm agent's usage; runs are spread over four agents and three
specs. Then it times the whole command, `orchestra -C DIR stats` and `... stats --json`, K times each, from
starting the process to its exit, and prints the median, min and max. It exits 0 (read the table).

Figures on the development container (2 cores), 2026-12-02, 100,000 entries (152 MB ledger), 5 runs:

    whole command                    median    min     max    target
    orchestra stats (first version)   1.79 s   1.71 s  1.83 s   <= 2 s
    orchestra stats                   1.05-1.29 s (7 runs: 1.07 min, 1.68 max), 319 MiB peak

(The first version worked out each decision's time twice, once per table.) Where the time goes: reading
and splitting the file ~0.35 s, decoding the fields used (msgspec) ~0.34 s, counting ~0.3 s, start ~0.15 s.
The whole file is held in memory while it is read (the peak above); streaming it is left for later.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ledger_bench  # noqa: E402  (this script's folder)
from benchkit import ORCHESTRA, isolate  # noqa: E402

TARGET_SECONDS = 2.0
AGENTS = ("coder", "tester", "claude", "codex")
SPECS = ("fix-parser", "add-docs", "speed-up")


def stats_entry(n: int, merges: dict[int, str]) -> dict:
    """ledger_bench's entry, with what the stats read spread over agents, specs and groups."""
    fields = ledger_bench_entry(n, merges)
    fields.update(agent=AGENTS[n % len(AGENTS)], spec=SPECS[n % len(SPECS)], group=f"g{n // 3}",
                  review_since=1700000000 + n * 60 - 45)
    if n % 3 == 0:
        fields["usage"] = {"model": "bench-model", "prompt_tokens": 12000 + n % 500, "completion_tokens": 900,
                           "cost": 0.04, "turns": 7}
    return fields


ledger_bench_entry = ledger_bench.entry_fields


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build in this directory and leave it")
    args = parser.parse_args()
    if not ORCHESTRA.exists():
        raise SystemExit(f"orchestra is not installed next to {sys.executable}: run this with the project's venv.")
    base = args.keep or Path(tempfile.mkdtemp(prefix="stats-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    isolate(base)
    try:
        root = base / "repo"
        accepts = [n for n in range(args.entries) if n % ledger_bench.ACCEPT_SHARE == 1]
        merges = ledger_bench.make_repository(root, accepts)
        ledger_bench.entry_fields = stats_entry  # write_ledger writes these entries
        size = ledger_bench.write_ledger(root, args.entries, merges, None).stat().st_size / 1e6
        print(f"orchestra stats benchmark: {args.entries} entries ({size:.0f} MB ledger), {args.runs} runs each\n")
        print(f"{'whole command':<36} {'median':>8} {'min':>8} {'max':>8}   target")
        for label, extra in (("orchestra stats", []), ("orchestra stats --json", ["--json"])):
            times = time_command([str(ORCHESTRA), "-C", str(root), "stats", *extra], args.runs)
            median = statistics.median(times)
            verdict = f"<= {TARGET_SECONDS:.0f} s {'ok' if median <= TARGET_SECONDS else 'MISSED'}"
            print(f"{label:<36} {median:>7.2f}s {min(times):>7.2f}s {max(times):>7.2f}s   {verdict}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
