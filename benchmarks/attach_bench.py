"""Benchmark: talking to an interactive agent: keystroke echo time through its supervisor, and what a flood of
output costs the event log.

Run with the project's venv python:

    .venv/bin/python benchmarks/attach_bench.py [--keys N] [--flood SECONDS] [--sandbox auto|off]

In a temporary HOME and repository it spawns two interactive shell agents (session = "interactive"):

* `cat`, attached to over the run's socket as `orchestra attach` is: each of --keys keys (default 200) is
  typed one at a time and timed until its echo comes back through the pty and the supervisor (what a
  conductor feels when typing to an agent);
* a flood: an agent printing lines as fast as it can for --flood seconds (default 5), with nobody attached:
  how many output events and bytes reach the event log per second (the screen is written at most 4 times
  a second), and whether the agent was ever held up (it prints a line count; the supervisor drains it).

It prints a table and exits 0. On a machine shared with other work the times are rough.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from benchkit import cli, git, isolate  # noqa: E402

from orchestra.core.supervise.attach_wire import KEYS, connect, frame, size_frame, socket_path  # noqa: E402

FLOOD = ("python3 -c \"import time, sys\nend = time.time() + {seconds}\nn = 0\nwhile time.time() < end:\n"
         "    n += 1; print('line', n, 'of the flood, padded to a typical width ' + '.' * 20)\n"
         "print('flood done', n)\"")


def make_repo(path: Path, sandbox: str, seconds: float) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    flood = FLOOD.format(seconds=seconds).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    (path / "orchestra.toml").write_text(
        f'[orchestra]\nsandbox = "{sandbox}"\n\n'
        '[[agents]]\nname = "echo"\nkind = "shell"\ncommand = "cat"\nsession = "interactive"\n\n'
        f'[[agents]]\nname = "flood"\nkind = "shell"\ncommand = "{flood}"\nsession = "interactive"\n\n'
        '[[specs]]\nid = "talk"\nintent = "talk"\nagents = ["echo"]\n\n'
        '[[specs]]\nid = "flood"\nintent = "flood"\nagents = ["flood"]\n')
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


def echo_times(repo: Path, run_id: str, keys: int) -> list[float]:
    path = socket_path(repo / ".git" / "orchestra" / "runs" / run_id)
    wait(path.exists, "the attach socket")
    connection = connect(path)
    connection.sendall(size_frame(24, 80))
    connection.settimeout(10)
    connection.recv(65536)  # the redraw
    times = []
    for index in range(keys):
        key = b"abcdefghijklmnopqrstuvwxyz"[index % 26:index % 26 + 1]
        start = time.perf_counter()
        connection.sendall(frame(KEYS, key))
        while key not in connection.recv(65536):
            pass
        times.append((time.perf_counter() - start) * 1000)
    connection.sendall(frame(KEYS, b"\x04"))  # ctrl-d at the start of a line: cat exits, the turn ends
    connection.close()
    return times


def flood_log(repo: Path, run_id: str) -> tuple[int, int, str]:
    events_path = repo / ".git" / "orchestra" / "runs" / run_id / "events.jsonl"
    ended = lambda: '"review"' in events_path.read_text() or '"failed"' in events_path.read_text()  # noqa: E731
    wait(ended, "the flood to end", 120)
    outputs = [json.loads(line) for line in events_path.read_text().splitlines() if '"output"' in line]
    last = next((e["text"] for e in reversed(outputs) if e["text"].startswith("flood done")), "?")
    return len(outputs), sum(len(json.dumps(e)) + 1 for e in outputs), last


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--flood", type=float, default=5.0)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "off"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchestra-attach-bench-") as base:
        isolate(Path(base))
        repo = make_repo(Path(base) / "repo", args.sandbox, args.flood)
        echo_run = cli(repo, "spawn", "talk").strip()
        times = sorted(echo_times(repo, echo_run, args.keys))
        flood_run = cli(repo, "spawn", "flood").strip()
        events, size, last = flood_log(repo, flood_run)
        for run_id in (echo_run, flood_run):
            cli(repo, "reject", run_id, "--reason", "benchmark")
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{'measure':<44} {'value':>12}")
    print(f"{'keystroke echo, median (ms)':<44} {statistics.median(times):>12.2f}")
    print(f"{'keystroke echo, p95 (ms)':<44} {p95:>12.2f}")
    print(f"{'keystroke echo, max (ms)':<44} {times[-1]:>12.2f}")
    print(f"{f'flood: output events per second ({args.flood:g} s)':<44} {events / args.flood:>12.1f}")
    print(f"{'flood: event log bytes per second':<44} {size / args.flood:>12.0f}")
    print(f"{'flood: the agent finished (its last line)':<44} {last:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
