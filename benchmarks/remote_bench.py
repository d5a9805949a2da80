"""Benchmark: a run on another host over SSH (issue 14): its start overhead (target <= 1 s more than the same
run here) and how late its agent's lines reach the local event log (target p95 <= 200 ms).

Run as root (the ssh host is tests/harness/sshd.py: a real sshd on 127.0.0.1 with an account of its own)
with the project's venv python:

    .venv/bin/python benchmarks/remote_bench.py [--runs N]

HOME, the XDG dirs, git's global config and XDG_RUNTIME_DIR (where the shared ssh connection's socket goes)
point into temporary directories; the script starts the sshd harness itself, puts it in the settings as host
"box" and stops it at the end, after rejecting every run (so no supervisor or relay is left). No network:
everything is over the loopback interface, so the host's clocks are this machine's.

1. Start overhead. What is timed is what a user at a shell waits for: from starting `orchestra spawn start
   --host box` (or `--host local`) as a subprocess until the agent's first line ("started") is in the LOCAL
   event log, .git/orchestra/runs/rN/events.jsonl (read every 2 ms once the command has printed the run's id;
   the time the command itself took to return is shown too). One warm-up each first: the first remote run is
   the cold one, which also makes the host's mirror and the shared ssh connection; it is reported on its
   own. Then N alternating pairs (remote first in even pairs, local first in odd), each run waited on until it
   settles in review and then rejected, so nothing of one competes with the next. Medians and p90 of each and
   of the per-pair difference (remote - local). Then where a remote start's time goes, from the events' own
   times: a relayed event keeps the host's "t", and the first one relayed is the run's record made at the
   host (by `orchestra remote start`, after the relay has started, prepared the mirror and pushed the base).

2. Event latency. A run on box whose agent (a shell loop, in the host's bubblewrap sandbox, as the account)
   prints 200 lines, each holding its own clock (`date +%s.%N`), 30 ms apart. A watcher here polls the local
   events.jsonl's size every 2 ms and stamps each line with time.time() when it sees it; its own delay (<= 2 ms
   and the read) is in the figures. Latency = arrival - printed. The same run on this machine (host local) is
   measured as a baseline: what every run has (the supervisor's batched writes), against what the relay adds.
   Each output event also carries the host supervisor's write time ("t"), which splits a remote line's latency
   into "at the host" (printed -> written to the host's log) and "relay" (host's log -> the log here).

3. One command at the host, 5 times each: `ssh HOST true` as orchestra runs it (over its shared connection),
   the same on a connection of its own, and one `orchestra remote` verb. When the first is not far below the
   second, the shared connection is not being used and every ssh orchestra runs pays a whole handshake.

It prints the tables and exits 0 (read them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from benchkit import ORCHESTRA, isolate, score_repo  # noqa: E402

if TYPE_CHECKING:
    from orchestra.core.supervise.ssh import Place

START_TARGET_S = 1.0
LATENCY_TARGET_MS = 200.0
LINES = 200
SPACING_S = 0.03
POLL_S = 0.002
SCORE = f"""\
[[agents]]
name = "starter"
kind = "shell"
command = "echo started; echo done > started.txt"

[[agents]]
name = "ticker"
kind = "shell"
command = 'for i in $(seq 1 {LINES}); do echo "T $i $(date +%s.%N)"; sleep {SPACING_S}; done; echo x > ticks.txt'

[[specs]]
id = "start"
intent = "Say that it started"
agents = ["starter"]

[[specs]]
id = "ticks"
intent = "Print the time, line after line"
agents = ["ticker"]
"""


class LogTail:
    """The new complete lines of a run's local events.jsonl, each stamped with when this process saw it."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def poll(self) -> list[tuple[float, dict]]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self.offset:
            return []
        seen = time.time()
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read(size - self.offset)
        self.offset += len(data)
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        data, self.partial = data[:cut], data[cut:]
        found = []
        for line in data.splitlines():
            try:
                found.append((seen, json.loads(line)))
            except ValueError:
                pass
        return found


class Bench:
    def __init__(self, repo: Path) -> None:
        from orchestra.core.fleet import Fleet
        from orchestra.core.git.repo import open_repository
        from orchestra.core.score import load_score
        self.repo = repo
        handle = open_repository(repo)
        self.fleet = Fleet(handle, load_score(handle.score_path))
        self.store = self.fleet.store

    def spawn(self, spec: str, host: str) -> tuple[str, float]:
        """`orchestra spawn SPEC --host HOST` as a user runs it; the run's id and when the command started."""
        started = time.perf_counter()
        done = subprocess.run([str(ORCHESTRA), "-C", str(self.repo), "spawn", spec, "--host", host],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"orchestra spawn {spec} --host {host} failed: {done.stderr.strip()}")
        return done.stdout.split()[0], started

    def start_overhead(self, host: str, timeout: float = 60.0) -> dict[str, float]:
        """Seconds from `orchestra spawn` to the first line in the local log ("first") and to the command's
        return ("returned"); with the events' own times (the writer's clock, the host's for a remote run's),
        where the time went."""
        wall = time.time()
        run_id, started = self.spawn("start", host)
        returned = time.perf_counter() - started
        tail = LogTail(self.store.events_path(run_id))
        log: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = tail.poll()
            log += [event for _, event in found]
            line = [(seen, e) for seen, e in found if e.get("type") == "output" and e.get("text") == "started"]
            if line:
                first, (seen, event) = time.perf_counter() - started, line[0]
                break
            time.sleep(POLL_S)
        else:
            raise SystemExit(f"{run_id} on {host}: no first line within {timeout:g} s: {self.store.load(run_id)}")
        times = {"first": first, "returned": returned, "line written": event["t"] - wall, "line seen": seen - wall}
        relayed = [e for e in log if "ro" in e]  # a remote run's: the first is its record made at the host
        if relayed:
            times["at the host"] = relayed[0]["t"] - wall
        self.settle_and_reject(run_id)
        return times

    def event_latency(self, host: str, timeout: float = 90.0) -> list[tuple[float, float]]:
        """Per line of the ticker's: (arrival here - printed, host's write - printed), in seconds."""
        run_id, _ = self.spawn("ticks", host)
        tail = LogTail(self.store.events_path(run_id))
        found: dict[int, tuple[float, float]] = {}
        deadline = time.monotonic() + timeout
        while len(found) < LINES and time.monotonic() < deadline:
            for seen, event in tail.poll():
                words = str(event.get("text", "")).split()
                if event.get("type") == "output" and len(words) == 3 and words[0] == "T":
                    printed = float(words[2])
                    found[int(words[1])] = (seen - printed, float(event.get("t", seen)) - printed)
            time.sleep(POLL_S)
        if len(found) < LINES:
            raise SystemExit(f"{run_id} on {host}: {len(found)} of {LINES} lines within {timeout:g} s")
        self.settle_and_reject(run_id)
        return [found[n] for n in sorted(found)]

    def settle_and_reject(self, run_id: str, timeout: float = 60.0) -> None:
        """Wait until the run is in review with its gates done (nothing of it competes with the next), then
        reject it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.load(run_id)
            if not run.is_active and (run.state != "review" or (
                    set(run.expected_gates()) <= set(run.gates)
                    and all(g.status not in ("pending", "running") for g in run.gates.values()))):
                break
            time.sleep(0.05)
        else:
            print(f"  ({run_id} did not settle within {timeout:g} s; rejected as it is)")
        if run.state not in ("review", "rejected"):
            print(f"  ({run_id} ended {run.state}: {run.message})")
        self.fleet.reject(run_id, "benchmark")

    def reject_all(self) -> None:
        for run in self.store.list():
            if run.state not in ("accepted", "rejected"):
                try:
                    self.fleet.reject(run.id, "benchmark cleanup")
                except Exception as error:  # keep cleaning up
                    print(f"could not reject {run.id}: {error!r}", file=sys.stderr)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def supervisors_left(state_dir: Path) -> list[int]:
    """Live processes whose command line names the repository's state directory (supervisors, relays)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if str(state_dir).encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    left.append(int(entry))
            except OSError:
                pass
    return left


def ssh_probe(place: Place, repo_key: str, config: Path, alias: str, times: int = 5) -> dict[str, list[float]]:
    """What one command at the host costs: over the shared connection (as orchestra runs ssh), on a connection
    of its own, and one `orchestra remote` verb (prepare, which has nothing to do)."""
    from orchestra.core.supervise.ssh import call, ssh_argv
    for_repo = dataclasses.replace(place, repo=repo_key)
    probes = {"ssh HOST true, as orchestra runs it": lambda: subprocess.run(
                  ssh_argv(place, "true"), capture_output=True, check=True, stdin=subprocess.DEVNULL),
              "ssh HOST true, a connection of its own": lambda: subprocess.run(
                  ["ssh", "-F", str(config), "-o", "ControlPath=none", "-T", alias, "true"], capture_output=True,
                  check=True, stdin=subprocess.DEVNULL),
              "`orchestra remote prepare` (a verb's round trip)": lambda: call(for_repo, "prepare")}
    found: dict[str, list[float]] = {}
    for name, probe in probes.items():
        for _ in range(times):
            started = time.perf_counter()
            probe()
            found.setdefault(name, []).append(time.perf_counter() - started)
    return found


def table(title: str, rows: dict[str, list[float]], scale: float, digits: int,
          columns: tuple[str, ...] = ("median", "p90", "max")) -> None:
    """One row per series: its median (or p50), p90/p95 (nearest rank) and max, times scale."""
    def figure(values: list[float], column: str) -> float:
        if column in ("median", "p50"):
            return statistics.median(values)
        return pct(values, {"p90": 0.9, "p95": 0.95, "max": 1.0}[column])
    if title:
        print(title)
    print(f"   {'':<48}" + "".join(f"{c:>8}" for c in columns))
    for name, values in rows.items():
        print(f"   {name:<48}" + "".join(f"{figure(values, c) * scale:>8.{digits}f}" for c in columns))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="alternating remote/local pairs (default 10)")
    args = parser.parse_args()
    from tests.harness.sshd import HarnessError, start_ssh_host
    # XDG_RUNTIME_DIR holds the shared connection's socket: kept short, for a socket's path has at most 107
    # bytes and ssh adds 17 while it binds (a longer one and there is no shared connection: every ssh connects).
    with tempfile.TemporaryDirectory(prefix="orchestra-remote-bench-") as tmp, \
            tempfile.TemporaryDirectory(prefix="orb", dir="/tmp") as runtime:
        base = Path(tmp)
        isolate(base, env={"XDG_RUNTIME_DIR": runtime})
        (base / "sshd").mkdir()
        try:
            host = start_ssh_host(base / "sshd")
        except HarnessError as error:
            raise SystemExit(str(error)) from None
        os.environ["ORCHESTRA_SSH_CONFIG"] = str(host.config)
        folder = f"bench-{uuid.uuid4().hex[:10]}"  # orchestra's directory at the host, removed at the end
        from orchestra.core.settings import settings_path
        settings = settings_path()
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(f'[[hosts]]\nname = "box"\nssh = "{host.alias}"\nslots = 4\n'
                            f'orchestra = "{host.orchestra}"\npath = "~/{folder}"\n')
        repo = score_repo(base, SCORE)
        bench = Bench(repo)
        from orchestra.core.hosts import load_hosts
        from orchestra.core.supervise.ssh import end_connection, repo_key
        place = next(h for h in load_hosts() if h.name == "box").place()
        try:
            print(f"ssh host ready in {host.setup_seconds:.1f} s (sshd on 127.0.0.1:{host.port}, account "
                  f"{host.user}); {os.cpu_count()} cores")
            cold = bench.start_overhead("box")
            warm_local = bench.start_overhead("local")
            pairs = []
            for n in range(args.runs):
                if n % 2 == 0:
                    remote = bench.start_overhead("box")
                    local = bench.start_overhead("local")
                else:
                    local = bench.start_overhead("local")
                    remote = bench.start_overhead("box")
                pairs.append((remote, local))
            remote_lat = bench.event_latency("box")
            local_lat = bench.event_latency("local")
            probes = ssh_probe(place, repo_key(bench.fleet.repo.root, bench.fleet.repo.common_dir), host.config,
                               host.alias)
        finally:
            bench.reject_all()
            deadline = time.monotonic() + 10
            while (left := supervisors_left(bench.store.state_dir)) and time.monotonic() < deadline:
                time.sleep(0.05)
            end_connection(place)
            host.run(f"rm -rf ~/{folder}")
            host.stop()
        if left:
            print(f"processes still naming the state directory after the rejects: {left}", file=sys.stderr)

    print(f"\n1. start overhead: `orchestra spawn start --host H` (a subprocess, as typed at a shell) -> the agent's "
          f"first line in the local events.jsonl\n   (seconds; target: remote - local <= {START_TARGET_S:.1f})")
    print(f"   cold remote run (makes the mirror and the shared ssh connection): {cold['first']:.3f} "
          f"(spawn returned after {cold['returned']:.3f}); local warm-up {warm_local['first']:.3f}")
    remotes, locals_ = [r for r, _ in pairs], [loc for _, loc in pairs]
    table(f"   {len(pairs)} alternating pairs after the warm-ups:", {
        "remote (box)": [r["first"] for r in remotes],
        "local": [loc["first"] for loc in locals_],
        "remote - local (per pair)": [r["first"] - loc["first"] for r, loc in pairs]}, 1, 3)
    table("   where the time goes (from the events' own times; the host's clock is this one):", {
        "remote: spawn returned": [r["returned"] for r in remotes],
        "remote: spawn -> its record made at the host": [r["at the host"] for r in remotes],
        "remote:   -> the line written at the host": [r["line written"] - r["at the host"] for r in remotes],
        "remote:   -> the line in the log here": [r["line seen"] - r["line written"] for r in remotes],
        "local: spawn returned": [loc["returned"] for loc in locals_],
        "local: spawn -> the line written here": [loc["line written"] for loc in locals_]}, 1, 3)

    print(f"\n2. event latency: printed by the agent (its own clock) -> seen in the local events.jsonl, {LINES} lines "
          f"{SPACING_S * 1000:.0f} ms apart\n   (ms; the watcher polls the file's size every 2 ms, its delay is "
          f"included; target p95 <= {LATENCY_TARGET_MS:.0f} on box)")
    table("", {"remote (box): printed -> here": [a for a, _ in remote_lat],
               "  printed -> written to the host's log": [h for _, h in remote_lat],
               "  host's log -> the log here (the relay)": [a - h for a, h in remote_lat],
               "local: printed -> the log": [a for a, _ in local_lat]}, 1000, 0, ("p50", "p95", "max"))

    table("\n3. one command at the host (ms, 5 each; with the shared connection working, the first is far below "
          "the second)", probes, 1000, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
