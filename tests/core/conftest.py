"""Core test fixtures: fleets on temporary repositories whose runs are all decided at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestra.core.fleet import Fleet
from orchestra.core.supervise.processes import stop_supervisor
from orchestra.core.git.repo import open_repository
from orchestra.core.score import load_score
from tests.core.helpers import FAKE_KEY, kill_all, processes_with, wait_for, write_score
from tests.harness.fake_openai import FakeOpenAI

MakeFleet = Callable[..., Fleet]


def decide_everything(fleet: Fleet) -> list[str]:
    """Reject every run not yet decided, so no detached supervisor is left watching; return problems.

    A decided run has no supervisor, even when its worktree was kept."""
    problems = []
    for run in fleet.store.list():
        if run.state in ("accepted", "rejected"):
            continue
        try:
            fleet.reject(run.id, "test cleanup")
        except Exception as error:  # keep cleaning up; report it afterwards
            problems.append(f"could not reject {run.id}: {error!r}")
            stop_supervisor(fleet.store.load(run.id), timeout=5)
    marker = str(fleet.repo.state_dir)
    try:
        wait_for(lambda: not processes_with(marker), timeout=10, message="supervisors to end")
    except AssertionError:
        leftovers = processes_with(marker)
        kill_all([pid for pid, _ in leftovers])
        problems.append(f"processes still running after cleanup: {leftovers}")
    return problems


@pytest.fixture
def make_fleet() -> Iterator[MakeFleet]:
    """make_fleet(root, score_text=None): a Fleet on root (writing and committing orchestra.toml first when
    score_text is given). At teardown every run of every such repository that is not yet accepted or rejected
    is rejected, and the test fails if any supervisor process of those repositories is still alive."""
    fleets: dict[Path, Fleet] = {}

    def make(root: Path, score_text: str | None = None) -> Fleet:
        if score_text is not None:
            write_score(root, score_text)
        repo = open_repository(root)
        score = load_score(repo.score_path) if repo.score_path.exists() else None
        fleet = Fleet(repo, score)
        fleets.setdefault(repo.state_dir, fleet)
        return fleet

    yield make
    problems = []
    for fleet in fleets.values():
        problems += decide_everything(fleet)
    assert not problems, "\n".join(problems)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake model server, with FAKE_PROVIDER_KEY holding FAKE_KEY and fast retries."""
    monkeypatch.setenv("FAKE_PROVIDER_KEY", FAKE_KEY)
    monkeypatch.setenv("ORCHESTRA_LLM_RETRY_BASE", "0.05")
    with FakeOpenAI() as fake:
        yield fake
