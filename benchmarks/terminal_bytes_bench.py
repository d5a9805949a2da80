"""Benchmark: bytes the fleet UI writes to the terminal while shell agents stream — what an SSH link carries.

Run with the project's venv python (it finds `orchestra` next to it):

    .venv/bin/python benchmarks/terminal_bytes_bench.py [--seconds 20]

It makes its own temporary HOME, XDG dirs and git repository, prints a table and exits 0 (it does not
fail on a missed target; read the table). Every run it starts is stopped and rejected at the end.

What it measures: the real `orchestra` UI on a 160x48 pty, in a repository where N shell agents each
print 10 short lines a second (`echo`, `sleep 0.1`). Once every run's pane is painted and the runs
have streamed for a few seconds, the bytes the UI writes to the pty are counted for --seconds (20 by
default). Two fleets: one agent alone, then 8 at once. For scale, the table also gives the text the
agents printed in the window (the bytes of their lines), which is all that really changes on screen.
Target: <= 25 KB/s for the 8, with the focused pane still live (its newest line appears within a
second of the agent printing it; checked by waiting for a line printed after the window).

Figures on the development container (2 cores shared with other work), 2026-12-02:

    agents    before (each pane repainted whole on every update and tick)    after
    1         137.6 KB/s                                                      7.8 KB/s
    8         236.4 KB/s                                                     13.7 KB/s (focused pane live)

What made the difference: a pane repaints only the rows whose text changed; its output tail scrolls by
half its height at a time, so a new line fills one empty row instead of moving every row; unfocused panes
show new output at most once a second; the elapsed-time tick repaints the status row only, and only
when its text changed; a border title is set only when it changes (setting one repaints the pane).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchkit import ORCHESTRA, PtyUI, cli, git, isolate, runs  # noqa: E402  (this script's folder)

COLUMNS, ROWS = 160, 48
FLEETS = (1, 8)
LINES_PER_SECOND = 10
TARGET_KBPS = 25.0
WARM_UP = 4.0  # seconds of streaming before counting: start-up toasts come and go
LINE = "line {i} of $ORCHESTRA_RUN: short output"


def score(agents: int, seconds: float) -> str:
    """A score with one spec whose agents each print LINES_PER_SECOND lines a second for long enough."""
    count = int((seconds + 60) * LINES_PER_SECOND)
    # A TOML literal string (single quotes): the command's own double quotes stay as they are.
    command = f'for i in $(seq 1 {count}); do echo "{LINE.format(i="$i")}"; sleep {1 / LINES_PER_SECOND}; done'
    blocks = "".join(f"\n[[agents]]\nname = \"s{n}\"\nkind = \"shell\"\ncommand = '{command}'\ntimeout = 600\n"
                     for n in range(1, agents + 1))
    names = ", ".join(f'"s{n}"' for n in range(1, agents + 1))
    return f'[orchestra]\ntarget = "main"\n{blocks}\n[[specs]]\nid = "stream"\nintent = "Print lines"\nagents = [{names}]\n'


def make_repo(path: Path, agents: int, seconds: float) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "orchestra.toml").write_text(score(agents, seconds))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def Pty(repo: Path) -> PtyUI:
    """`orchestra` on a COLUMNS x ROWS pty; counts what it writes and keeps a tail for searching."""
    return PtyUI([str(ORCHESTRA)], repo, COLUMNS, ROWS, keep=1 << 20)


def printed_bytes(repo: Path, run_ids: list[str]) -> int:
    """Bytes of output the runs' agents printed so far (their event logs' output text)."""
    total = 0
    for run_id in run_ids:
        total += sum(len(line) + 1 for line in cli(repo, "log", run_id).splitlines() if line.startswith("line "))
    return total


def measure(base: Path, agents: int, seconds: float) -> dict[str, float]:
    repo = make_repo(base / f"fleet-{agents}", agents, seconds)
    run_ids = cli(repo, "spawn", "stream").split()
    ui = None
    try:
        ui = Pty(repo)
        titles = [f" {rid} s{n} ".encode() for n, rid in enumerate(run_ids, 1)]
        if ui.read(20, until=titles) is None:
            raise RuntimeError(f"the panes did not appear; output tail: {bytes(ui.output[-1500:])!r}")
        ui.read(WARM_UP)
        printed_before, bytes_before, started = printed_bytes(repo, run_ids), ui.total, time.monotonic()
        ui.read(seconds)
        wall = time.monotonic() - started
        written, printed = ui.total - bytes_before, printed_bytes(repo, run_ids) - printed_before
        # Live: the focused (first) pane shows a line its agent printed after the window, within a second.
        last = max(int(n) for n in re.findall(rb"line (\d+) of " + run_ids[0].encode(), bytes(ui.output)) or [b"0"])
        live = None is not ui.read(1.5, until=re.compile(rb"line %d of %s" % (last + 5, run_ids[0].encode())))
        return {"agents": agents, "kbps": written / wall / 1000, "printed_kbps": printed / wall / 1000,
                "live": live}
    finally:
        if ui is not None:
            ui.close()
        stop_all(repo)


def stop_all(repo: Path) -> None:
    """Stop and reject every run (rejecting removes the worktrees; the supervisors end with the agents)."""
    for run in runs(repo).values():
        if run["state"] in ("queued", "working", "waiting"):
            subprocess.run([str(ORCHESTRA), "stop", run["id"]], cwd=repo, capture_output=True, timeout=60)
    for run in runs(repo).values():
        if run["state"] not in ("accepted", "rejected"):
            subprocess.run([str(ORCHESTRA), "reject", run["id"], "--reason", "benchmark clean-up"],
                           cwd=repo, capture_output=True, timeout=60)


def main() -> int:
    if not ORCHESTRA.exists():
        print(f"orchestra is not installed next to {sys.executable}: run this with the project's venv python.")
        return 2
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 20.0
    base = Path(tempfile.mkdtemp(prefix="orchestra-bytes-bench-"))
    isolate(base)
    results = []
    try:
        for agents in FLEETS:
            print(f"{agents} streaming agent(s): measuring {seconds:g} s …", file=sys.stderr, flush=True)
            results.append(measure(base, agents, seconds))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"orchestra terminal bytes benchmark ({os.cpu_count()} cores, {COLUMNS}x{ROWS} pty, "
          f"{LINES_PER_SECOND} lines/s per agent, {seconds:g} s)\n")
    print(f"{'agents':<8} {'UI writes':>12} {'agents print':>14} {'ratio':>7} {'focused live':>13}   target")
    for result in results:
        target = result["agents"] == 8
        ok = "ok" if result["kbps"] <= TARGET_KBPS and result["live"] else "MISSED"
        print(f"{result['agents']:<8} {result['kbps']:>7.1f} KB/s {result['printed_kbps']:>9.1f} KB/s "
              f"{result['kbps'] / max(result['printed_kbps'], 0.001):>6.0f}x {'yes' if result['live'] else 'NO':>13}   "
              + (f"<= {TARGET_KBPS:g} KB/s {ok}" if target else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
