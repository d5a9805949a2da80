"""Which host a run works on: the one asked for (`spawn --host`, the agent's `host`) or wherever a slot is free,
this machine first; with every slot it may use busy, the run waits, queued, and starts when one frees.

A slot is held by a run that is queued to start, working or waiting for input: a run in review has finished
its agent's work (its gates may still run). Whoever frees a slot starts what waits: a supervisor whose agent
has finished, a relay whose remote run has, a stop or a decision (`dispatch`, under one lock, so two never
place a run twice or one slot twice). A marker per waiting run (`waiting/<run>` in the state directory)
lets them see at a glance, without reading every run, whether anything waits.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.base.errors import BadUsage
from orchestra.core.base.files import file_lock
from orchestra.core.hosts import LOCAL, Host, load_hosts
from orchestra.core.runs.run import ACTIVE_STATES, Run
from orchestra.core.runs.store import WAITING_DIR, anything_waits

if TYPE_CHECKING:
    from orchestra.core.fleet.fleet import Fleet
    from orchestra.core.score import Agent


def busy_on(runs: list[Run], name: str) -> int:
    """The slots of host name its runs hold."""
    return sum(1 for run in runs if (run.host or LOCAL) == name and run.state in ACTIVE_STATES and not run.slot_wait)


def room(host: Host, runs: list[Run]) -> float:
    return float("inf") if host.slots is None else host.slots - busy_on(runs, host.name)


def choose(hosts: list[Host], runs: list[Run], wanted: str | None) -> Host | None:
    """The host a run goes to now: wanted if it has room, else (none wanted) this machine if it has, else the
    host with the most room; None: it waits."""
    candidates = [host for host in hosts if wanted is None or host.name == wanted]
    free = [host for host in candidates if room(host, runs) > 0]
    if not free:
        return None
    return max(free, key=lambda host: (host.local, room(host, runs)))


def wanted_host(hosts: list[Host], asked: str | None, agent_host: str | None, agent: str) -> str | None:
    """The host a run must go to, checked against the user's hosts; BadUsage when there is no such host."""
    wanted = asked or agent_host
    if wanted is not None and wanted not in {host.name for host in hosts}:
        names = ", ".join(host.name for host in hosts)
        where = "--host" if asked else f"agent {agent}'s host"
        raise BadUsage(f"{where} is {wanted!r}, which is not one of your hosts ({names}); hosts are [[hosts]] in "
                       "your settings file (orchestra hosts lists them). Nothing was started.")
    return wanted


def waiting_marker(state_dir: Path, run_id: str) -> Path:
    return state_dir / WAITING_DIR / run_id


def mark_waiting(state_dir: Path, run_id: str) -> None:
    path = waiting_marker(state_dir, run_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.touch()


def waits_for(hosts: list[Host], runs: list[Run], wanted: str | None) -> str:
    """Why a run waits, for its pane: each host it may use and how busy it is."""
    shown = [f"{host.name} {busy_on(runs, host.name)}/{host.slots}" for host in hosts
             if host.slots is not None and (wanted is None or host.name == wanted)]
    return "waiting for a free slot (" + ", ".join(shown) + ")"


def dispatch(fleet: Fleet) -> list[Run]:
    """Start the waiting runs that now have a slot, oldest first; the runs started."""
    state_dir = fleet.repo.state_dir
    if not anything_waits(state_dir):
        return []
    hosts = load_hosts()
    started: list[Run] = []
    with file_lock(state_dir / "placement.lock"):
        runs = fleet.store.list()
        for run in sorted((r for r in runs if r.slot_wait), key=lambda r: r.created):
            if run.state != "queued":  # decided (rejected) while it waited
                fleet.store.set(run.id, slot_wait=None)
                waiting_marker(state_dir, run.id).unlink(missing_ok=True)
                continue
            wanted = run.slot_wait.get("host") if isinstance(run.slot_wait, dict) else None
            host = choose(hosts, runs, wanted if wanted in {h.name for h in hosts} else None)
            if host is None:
                continue
            placed = launch(fleet, run.id, host)
            waiting_marker(state_dir, run.id).unlink(missing_ok=True)
            runs = [placed if r.id == placed.id else r for r in runs]
            started.append(placed)
        for marker in list((state_dir / WAITING_DIR).iterdir()):
            if not any(r.id == marker.name and r.slot_wait for r in runs):
                marker.unlink(missing_ok=True)
    return started


def at_host(host: Host, fleet: Fleet) -> dict[str, Any]:
    """The fields of a run sent to host: its host, where it is kept there (its relay reads that from the record,
    so a run goes on even if the settings change), and its worktree as shown until the host has made it."""
    from orchestra.core.supervise.ssh import repo_key
    place = host.place()
    return {"host": host.name, "worktree": f"{host.name}:",
            "remote": {"ssh": place.ssh, "orchestra": place.orchestra, "path": place.path,
                       "repo": repo_key(fleet.repo.root, fleet.repo.common_dir)}}


def launch(fleet: Fleet, run_id: str, host: Host) -> Run:
    """Start a waiting run on host: its worktree made here, or its relay sending it there."""
    run = fleet.store.load(run_id)
    if host.local:
        from orchestra.core.git.worktrees import create_worktree
        from orchestra.core.supervise.ports import allocate_block
        tree = create_worktree(fleet.repo, Path(run.worktree), run.branch, run.base)
        fleet.store.set(run_id, gitdir=str(tree.gitdir), port=allocate_block(fleet.repo.state_dir, run_id),
                        slot_wait=None, message="")
    else:
        fleet.store.set(run_id, **at_host(host, fleet), slot_wait=None, message="")
    fleet.store.append_events(run_id, [{"type": "note", "text": f"a slot is free on {host.name}: starting"}])
    return fleet.start(run_id)


@dataclass
class Placement:
    """Where one new run goes: host, or (None) nowhere yet: it waits for a slot."""

    fleet: Fleet
    host: Host | None
    wanted: str | None
    why: str = ""

    def apply(self, run: Run) -> None:
        """Set where the new run works before its record is first written."""
        if self.host is None:
            run.slot_wait, run.message = {"host": self.wanted, "since": time.time()}, self.why
        elif not self.host.local:
            for key, value in at_host(self.host, self.fleet).items():
                setattr(run, key, value)

    def wait(self, run: Run) -> Run:
        mark_waiting(self.fleet.repo.state_dir, run.id)
        self.fleet.store.append_events(run.id, [{"type": "note", "text": self.why}])
        return run


@dataclass
class Placer:
    """Places the runs of one spawn: the hosts each may use are checked first (nothing starts when one is not
    the user's), then, under the placement lock, each goes where there is room as it is made."""

    fleet: Fleet
    asked: str | None
    agents: list[Agent]
    hosts: list[Host] = field(init=False)
    runs: list[Run] = field(default_factory=list)
    _lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __post_init__(self) -> None:
        self.hosts = load_hosts()
        self.wanted = {agent.name: wanted_host(self.hosts, self.asked, agent.host, agent.name) for agent in self.agents}
        # One host without a limit and nothing asked for: every run starts here at once, as it always did.
        self.simple = not any(self.wanted.values()) and len(self.hosts) == 1 and self.hosts[0].slots is None

    def __enter__(self) -> Placer:
        if not self.simple:
            self._lock.enter_context(file_lock(self.fleet.repo.state_dir / "placement.lock"))
            self.runs = self.fleet.store.list()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.close()

    def where(self, agent: Agent) -> Placement | None:
        if self.simple:
            return None
        wanted = self.wanted[agent.name]
        host = choose(self.hosts, self.runs, wanted)
        return Placement(self.fleet, host, wanted, "" if host else waits_for(self.hosts, self.runs, wanted))

    def placed(self, run: Run) -> Run:
        self.runs.append(run)
        return run


def stop_at_host(fleet: Fleet, run: Run) -> None:
    """Stop a remote run's supervisor at its host (for a run whose relay is gone); a host that cannot be reached
    is said in the run's log, and the decision goes on: the run there can do nothing that counts without it."""
    from orchestra.core.supervise.relay import place_of
    from orchestra.core.supervise.ssh import HostFailed, call
    try:
        call(place_of(run), "stop", run.id)
    except HostFailed as error:
        fleet.store.append_events(run.id, [{"type": "note", "text": f"could not stop it at its host: {error}"}])


def clean_at_host(fleet: Fleet, run: Run) -> Run:
    """A decided remote run: its worktree at its host goes (unless something in it would be lost there), and
    with it the values it was sent; its branch stays in the host's mirror, and its candidate is here."""
    from orchestra.core.supervise.relay import place_of
    from orchestra.core.supervise.ssh import HostFailed, call
    if not (run.remote or {}).get("worktree"):
        return run  # never reached its host
    try:
        kept = call(place_of(run), "clean", run.id).get("kept")
    except HostFailed as error:
        kept = {"path": run.worktree, "reason": f"its host could not be reached to remove it ({error})", "paths": []}
    if not isinstance(kept, dict):
        return fleet.store.set(run.id, kept=None) if run.kept else run
    reason = str(kept.get("reason") or "it holds work")
    return fleet.store.set(run.id, kept={"path": run.worktree, "reason": reason, "paths": []},
                           message=f"{run.message}; its worktree at {run.host} was kept: {reason}")
