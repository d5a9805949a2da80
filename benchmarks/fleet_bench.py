"""Benchmark: the fleet's first paint, its idle cost, and accepting a 50-file diff, with the real executable.

Run with the project's venv python (it finds `orchestra` next to it):

    .venv/bin/python benchmarks/fleet_bench.py

It makes its own temporary HOME, XDG dirs and git repositories, prints a table and exits 0
(it does not fail on a missed target; read the table). Every process it starts is stopped at the end.

What it measures, on this machine:

* first paint: `orchestra` on a 120x36 pty in a repository with 8 finished runs (8 quick shell agents
  spawned with `orchestra spawn`, waited for until review/failed); the time from starting the process
  to the first output that holds every run's pane title ("r1 q1" … "r8 q8"). 5 launches; median and max.
  Target <= 400 ms.
* idle: the same UI, 3 s after its first paint, for 10 s: bytes it writes to the pty (target 0) and
  its CPU from /proc/<pid>/stat utime+stime (target <= 1 % of one core). The 8 runs in review still
  have detached supervisors watching their worktrees; their summed CPU (processes whose cmdline holds
  orchestra.core.supervise.supervisor and this benchmark's state dir) is reported too.
* accept of a 50-file diff (a shell agent appends a line to 50 files): through the core API,
  `Fleet.accept(run_id)` until its ledger entry exists (a thread polls the ledger file), and the whole
  call; and through the UI on a pty, from writing "A" (accept without asking) to the ledger file
  growing by a line. 3 times each, with ledger signing configured (unless --unsigned). Target <= 250 ms.

Figures on the development container (2 cores shared with other work; Python 3.11, textual 8.2.8),
2026-12-02, with the trust work in (decisions journalled, ledger entries signed with an SSH key and
anchored in git; `--unsigned` measures without signing):

    metric                                              median       max   target
    first paint, 8 finished runs (5 launches)           322 ms    336 ms   <= 400 ms ok
      of which: start to the first byte of output       251 ms    269 ms
    idle: bytes written to the pty in 10 s                   0             0         ok
    idle: UI CPU over 10 s                              0.60 %             <= 1 %    ok
    idle: 8 review supervisors' CPU (sum)               2.00 %
    accept 50 files (signed): Fleet.accept -> entry      99 ms    129 ms   <= 250 ms ok
    accept 50 files (signed): whole Fleet.accept        120 ms    153 ms
    accept 50 files (signed): UI key A -> entry         139 ms    141 ms   <= 250 ms ok

For scale: a bare Textual app showing 8 Statics and a Footer paints in ~240 ms here (importing
textual.app alone takes ~195 ms). Before this work the fleet painted in ~530 ms: a default blank screen
was laid out first, each pane was a container of four Statics (40 widgets to style for 8 runs), and
orchestra's modules were compiled on every start because PYTHONDONTWRITEBYTECODE is set in this
container (that alone is ~70 ms; the table's "bytecode" line says whether it applies).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import benchkit  # noqa: E402
from benchkit import ORCHESTRA, cli, git, isolate, runs  # noqa: E402  (this script's folder)
SUPERVISOR_MODULE = "orchestra.core.supervise.supervisor"
COLUMNS, ROWS = 120, 36
QUICK_RUNS, FILES = 8, 50
PAINT_LAUNCHES, ACCEPT_REPEATS = 5, 3
SETTLE, IDLE = 3.0, 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

QUICK_AGENTS = "".join(f"""
[[agents]]
name = "q{n}"
kind = "shell"
command = "echo 'quick work {n}' > quick-{n}.txt; echo 'q{n} done'"
timeout = 60
""" for n in range(1, QUICK_RUNS + 1))

SCORE = f"""\
[orchestra]
target = "main"
{QUICK_AGENTS}
[[agents]]
name = "bulk"
kind = "shell"
command = "for i in $(seq 1 {FILES}); do echo \\"edited by $ORCHESTRA_RUN\\" >> files/f$i.txt; done; echo 'bulk done'"
timeout = 60

[[specs]]
id = "quick"
intent = "Leave a quick note"
agents = [{", ".join(f'"q{n}"' for n in range(1, QUICK_RUNS + 1))}]

[[specs]]
id = "bulk"
intent = "Touch fifty files"
allow = ["files/**"]
agents = ["bulk"]
"""


# -- set-up ------------------------------------------------------------------------------------------
def make_repo(path: Path) -> Path:
    (path / "files").mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "orchestra.toml").write_text(SCORE)
    for i in range(1, FILES + 1):
        (path / "files" / f"f{i}.txt").write_text(f"file {i}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def wait_finished(repo: Path, run_ids: list[str], timeout: float = 60.0) -> dict[str, dict]:
    """Wait until the runs finished and their gates ran (an "existing" fleet: nothing left to verify)."""
    deadline = time.monotonic() + timeout
    while True:
        current = runs(repo)
        if all(current[rid]["state"] in ("review", "failed") and
               all(gate["status"] not in ("pending", "running") for gate in current[rid]["gates"])
               for rid in run_ids):
            time.sleep(1.0)  # the supervisors settle into watching their worktrees
            return current
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs did not finish: { {rid: current[rid]['state'] for rid in run_ids} }")
        time.sleep(0.1)


def ledger_path(repo: Path) -> Path:
    return repo / ".git" / "orchestra" / "ledger.jsonl"


def ledger_lines(repo: Path) -> int:
    try:
        with open(ledger_path(repo), "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


# -- processes ------------------------------------------------------------------------------------------
def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def supervisors(repos: list[Path]) -> list[int]:
    state_dirs = {str(repo / ".git" / "orchestra") for repo in repos}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = cmdline(int(entry.name))
            if SUPERVISOR_MODULE in cmd and state_dirs & set(cmd):
                found.append(int(entry.name))
    return found


def ticks_of(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        try:
            ticks[pid] = cpu_ticks(pid)
        except (OSError, IndexError):
            pass
    return ticks


def PtyUI(repo: Path) -> benchkit.PtyUI:
    """`orchestra` on a pty of COLUMNS x ROWS whose output is read (and counted) by this process."""
    return benchkit.PtyUI([str(ORCHESTRA)], repo, COLUMNS, ROWS)


# -- the measurements ----------------------------------------------------------------------------------------
def first_paint(repo: Path, titles: list[bytes]) -> tuple[list[float], list[float], dict[str, float]]:
    """PAINT_LAUNCHES first paints (and first output bytes); the idle figures are taken on the last launch."""
    times, first_bytes, idle = [], [], {}
    for launch in range(PAINT_LAUNCHES):
        ui = PtyUI(repo)
        try:
            painted = ui.read(10.0, until=titles)
            if painted is None:
                raise RuntimeError(f"no first paint within 10 s; output so far:\n{bytes(ui.output[-2000:])!r}")
            times.append(painted)
            first_bytes.append(ui.first_byte or painted)
            if launch == PAINT_LAUNCHES - 1:
                idle = measure_idle(ui, repo)
        finally:
            ui.close()
    return times, first_bytes, idle


def measure_idle(ui: PtyUI, repo: Path) -> dict[str, float]:
    ui.read(SETTLE)
    watchers = supervisors([repo])
    before_ui, before_sup = cpu_ticks(ui.proc.pid), ticks_of(watchers)
    bytes_before, started = ui.total, time.perf_counter()
    ui.read(IDLE)
    wall = time.perf_counter() - started
    after_ui, after_sup = cpu_ticks(ui.proc.pid), ticks_of(watchers)
    sup_ticks = sum(after_sup[pid] - before_sup[pid] for pid in after_sup if pid in before_sup)
    return {"bytes": ui.total - bytes_before, "ui_cpu": 100 * (after_ui - before_ui) / CLK_TCK / wall,
            "sup_cpu": 100 * sup_ticks / CLK_TCK / wall, "supervisors": len(watchers),
            "idle_output": bytes(ui.output[bytes_before:])}


class LedgerWatch:
    """Polls the ledger file from a thread and notes when it grows past a line count."""

    def __init__(self, repo: Path) -> None:
        self.repo, self.lines = repo, ledger_lines(repo)
        self.grown_at: float | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            if ledger_lines(self.repo) > self.lines:
                self.grown_at = time.perf_counter()
                return
            time.sleep(0.001)

    def start(self) -> LedgerWatch:
        self.thread.start()
        return self

    def wait(self, timeout: float) -> float | None:
        self.thread.join(timeout)
        self._stop.set()
        return self.grown_at


def configure_signing(base: Path) -> None:
    """Sign ledger entries with an SSH key, the way git signs commits (gpg.format ssh, user.signingkey)."""
    key = base / "home" / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True)
    allowed = base / "home" / "allowed_signers"
    allowed.write_text(f"bench@example.test {Path(f'{key}.pub').read_text().strip()}\n")
    config = os.environ["GIT_CONFIG_GLOBAL"]
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", str(key)),
                        ("gpg.ssh.allowedSignersFile", str(allowed))):
        subprocess.run(["git", "config", "--file", config, name, value], check=True)


def check_entry(repo: Path, run_id: str, signed: bool) -> None:
    entry = json.loads(ledger_path(repo).read_text().splitlines()[-1])
    if entry["action"] != "accept" or entry["run"] != run_id or bool(entry.get("sig")) != signed:
        raise RuntimeError(f"the ledger's last entry is not the {'signed ' if signed else ''}accept of {run_id}")


def spawn_bulk(repo: Path) -> str:
    (run_id,) = cli(repo, "spawn", "bulk").split()
    run = wait_finished(repo, [run_id])[run_id]
    if run["state"] != "review" or run["diff"]["files"] != FILES:
        raise RuntimeError(f"the bulk run did not change {FILES} files: {run['state']} {run['diff']}")
    return run_id


def accept_core(repo: Path, signed: bool) -> tuple[list[float], list[float]]:
    from orchestra.core.fleet import Fleet
    from orchestra.core.git.repo import open_repository
    from orchestra.core.score import load_score

    to_entry, whole = [], []
    for _ in range(ACCEPT_REPEATS):
        run_id = spawn_bulk(repo)
        opened = open_repository(repo)
        fleet = Fleet(opened, load_score(opened.score_path))
        watch = LedgerWatch(repo).start()
        started = time.perf_counter()
        run = fleet.accept(run_id)
        returned = time.perf_counter()
        grown = watch.wait(5.0)
        if run.state != "accepted" or grown is None:
            raise RuntimeError(f"accept of {run_id} did not record an accept: {run.state}")
        check_entry(repo, run_id, signed)
        to_entry.append(grown - started)
        whole.append(returned - started)
    return to_entry, whole


def accept_ui(base: Path, repos: list[Path], signed: bool) -> list[float]:
    times = []
    for n in range(ACCEPT_REPEATS):
        repo = make_repo(base / f"accept-ui-{n}")
        repos.append(repo)
        run_id = spawn_bulk(repo)
        ui = PtyUI(repo)
        try:
            if ui.read(10.0, until=f" {run_id} bulk ".encode()) is None:
                raise RuntimeError("the UI did not paint the bulk run")
            ui.read_until_quiet()  # the first run takes the focus right after the first paint
            watch = LedgerWatch(repo).start()
            pressed = time.perf_counter()
            ui.press(b"A")
            deadline = time.perf_counter() + 10
            while watch.thread.is_alive() and time.perf_counter() < deadline:
                ui.read(0.01)
            grown = watch.wait(0)
            if grown is None:
                raise RuntimeError(f"pressing A did not accept {run_id} within 10 s")
            check_entry(repo, run_id, signed)
            times.append(grown - pressed)
            ui.read_until_quiet(limit=3)
        finally:
            ui.close()
    return times


# -- cleaning up -----------------------------------------------------------------------------------------------
def clean_up(repos: list[Path]) -> None:
    """Reject every run still in review (the CLI stops its supervisor), then stop any supervisor left."""
    for repo in repos:
        try:
            for run in runs(repo).values():
                if run["state"] in ("review", "stopped", "failed"):
                    subprocess.run([str(ORCHESTRA), "reject", run["id"], "--reason", "benchmark clean-up"],
                                   cwd=repo, capture_output=True, timeout=60)
        except Exception as error:  # keep cleaning the others
            print(f"clean-up of {repo}: {error}", file=sys.stderr)
    left = supervisors(repos)
    for pid in left:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while supervisors(repos) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in supervisors(repos):
        os.kill(pid, signal.SIGKILL)


# -- the report ------------------------------------------------------------------------------------------------
def stale_bytecode() -> list[str]:
    """orchestra's source files whose bytecode cache is missing or older than the source.

    With PYTHONDONTWRITEBYTECODE set (as on the development container) Python never writes these, and
    compiling them on every start costs the first paint ~70 ms; `./dev` compiles them at set-up.
    """
    import importlib.util
    stale = []
    for source in sorted((Path(__file__).resolve().parents[1] / "src" / "orchestra").rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            stale.append(str(source.relative_to(source.parents[2])))
    return stale


def row(metric: str, median: str, worst: str, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    return f"{metric:<48} {median:>9} {worst:>9}   {target:<9} {verdict}"


def seconds(values: list[float]) -> tuple[str, str]:
    return f"{statistics.median(values) * 1000:.0f} ms", f"{max(values) * 1000:.0f} ms"


def main() -> int:
    if not ORCHESTRA.exists():
        print(f"orchestra is not installed next to {sys.executable}: run this with the project's venv python.")
        return 2
    base = Path(tempfile.mkdtemp(prefix="orchestra-fleet-bench-"))
    isolate(base)
    signed = "--unsigned" not in sys.argv
    if signed:
        configure_signing(base)
    repos: list[Path] = []
    try:
        repo = make_repo(base / "fleet")
        repos.append(repo)
        quick = cli(repo, "spawn", "quick").split()
        finished = wait_finished(repo, quick)
        titles = [f" {rid} {finished[rid]['agent']} ".encode() for rid in quick]
        states = sorted({finished[rid]["state"] for rid in quick})
        print(f"{len(quick)} quick runs finished ({', '.join(states)}); measuring …", file=sys.stderr, flush=True)

        paints, first_bytes, idle = first_paint(repo, titles)
        core_entry, core_whole = accept_core(repo, signed)
        ui_accepts = accept_ui(base, repos, signed)
    finally:
        clean_up(repos)
        shutil.rmtree(base, ignore_errors=True)

    print(f"orchestra fleet benchmark ({os.cpu_count()} cores, {COLUMNS}x{ROWS} pty)")
    stale = stale_bytecode()
    print(f"bytecode of orchestra's modules: {'up to date' if not stale else f'{len(stale)} stale or missing'}"
          f"{' (run ./dev setup, or python -m compileall src)' if stale else ''}\n")
    print(row("metric", "median", "max", "target", None))
    print(row(f"first paint, {QUICK_RUNS} finished runs ({PAINT_LAUNCHES} launches)", *seconds(paints), "<= 400 ms",
              max(paints) <= 0.4))
    print(row("  of which: start to the first byte of output", *seconds(first_bytes), "", None))
    print(row(f"idle: bytes written to the pty in {IDLE:g} s", str(idle["bytes"]), "", "0", idle["bytes"] == 0))
    print(row(f"idle: UI CPU over {IDLE:g} s", f"{idle['ui_cpu']:.2f} %", "", "<= 1 %", idle["ui_cpu"] <= 1))
    print(row(f"idle: {idle['supervisors']} review supervisors' CPU (sum)", f"{idle['sup_cpu']:.2f} %", "", "", None))
    how = "signed" if signed else "unsigned"
    print(row(f"accept {FILES} files ({how}): Fleet.accept -> entry", *seconds(core_entry), "<= 250 ms",
              max(core_entry) <= 0.25))
    print(row(f"accept {FILES} files ({how}): whole Fleet.accept", *seconds(core_whole), "", None))
    print(row(f"accept {FILES} files ({how}): UI key A -> entry", *seconds(ui_accepts), "<= 250 ms",
              max(ui_accepts) <= 0.25))
    print(f"\nfirst paints: {', '.join(f'{t * 1000:.0f}' for t in paints)} ms; "
          f"accepts (core/ledger, UI): {', '.join(f'{t * 1000:.0f}' for t in core_entry)} / "
          f"{', '.join(f'{t * 1000:.0f}' for t in ui_accepts)} ms")
    if idle["bytes"]:
        print(f"idle output (first 300 bytes): {idle['idle_output'][:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
