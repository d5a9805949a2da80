"""Where a new run goes (fleet.placement): the host asked for, or where a slot is free, this machine first."""

from __future__ import annotations

from orchestra.core.fleet.placement import busy_on, choose, waits_for
from orchestra.core.hosts import Host
from orchestra.core.runs.run import Run

HOSTS = [Host("local", None, 2), Host("box", "dev@box", 1), Host("big", "dev@big", 4)]


def run(number: int, host: str | None, state: str = "working", waiting: bool = False) -> Run:
    return Run(id=f"r{number}", agent="a", spec=None, task="t", branch="b", worktree="w", base="0" * 40,
               target="main", agent_config={}, spec_config=None, state=state, host=host,
               slot_wait={"host": None} if waiting else None)


def test_this_machine_first_then_the_host_with_the_most_room() -> None:
    assert choose(HOSTS, [], None).name == "local"
    busy_here = [run(1, None), run(2, None)]
    assert choose(HOSTS, busy_here, None).name == "big"
    assert choose(HOSTS, [*busy_here, *(run(n, "big") for n in range(3, 7))], None).name == "box"


def test_a_run_holds_a_slot_until_its_agent_is_done() -> None:
    runs = [run(1, None, "queued"), run(2, None, "waiting"), run(3, None, "review"), run(4, None, "rejected"),
            run(5, None, "queued", waiting=True)]  # the last waits for a slot: it holds none
    assert busy_on(runs, "local") == 2


def test_a_wanted_host_that_is_full_means_waiting_even_with_room_elsewhere() -> None:
    runs = [run(1, "box")]
    assert choose(HOSTS, runs, "box") is None
    assert waits_for(HOSTS, runs, "box") == "waiting for a free slot (box 1/1)"
    assert choose(HOSTS, runs, "big").name == "big"


def test_every_slot_busy_is_a_wait_that_names_each_host() -> None:
    runs = [run(1, None), run(2, None), run(3, "box"), *(run(n, "big") for n in range(4, 8))]
    assert choose(HOSTS, runs, None) is None
    assert waits_for(HOSTS, runs, None) == "waiting for a free slot (local 2/2, box 1/1, big 4/4)"


def test_the_only_host_without_a_limit_always_has_room() -> None:
    alone = [Host("local", None, None)]
    assert choose(alone, [run(n, None) for n in range(1, 50)], None).name == "local"
