"""What keeps many runs on a big repository cheap: no git call made twice, no walk of untouched files,
and an idle run in review watched by a lean process that still notices edits (timings: benchmarks/)."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestra.core.base.files import slot_held
from orchestra.core.gates.commands import GateSlots
from orchestra.core.git import runner, worktrees
from orchestra.core.git.repo import Repository, open_repository
from orchestra.core.git.snapshot import settle, snapshot, tip_of, working_tree_id
from orchestra.core.git.worktrees import RunTree, agent_identity
from orchestra.core.supervise.lean_watch import changed_since
from orchestra.core.supervise.processes import supervisor_alive
from tests.conftest import git
from tests.core.conftest import MakeFleet
from tests.core.helpers import processes_with, score_text, wait_for, wait_settled, wait_state

CODER = agent_identity("coder")
FIX = "printf 'def answer():\\n    return 42\\n' > src/app.py"


@pytest.fixture
def tree(repo: Path) -> RunTree:
    repository: Repository = open_repository(repo)
    made = worktrees.create_worktree(repository, repository.worktrees_dir / "w1", "orchestra/t/w1/coder",
                                     repository.resolve("main"))
    worktrees.populate_worktree(made)
    return made


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command line orchestra runs from now on (after its hardening options)."""
    calls: list[tuple[str, ...]] = []
    real = runner._run

    def counted(cwd, args, env, input, text):  # noqa: A002 - runner._run's own signature
        calls.append(tuple(args))
        return real(cwd, args, env, input, text)
    monkeypatch.setattr(runner, "_run", counted)
    return calls


def test_settling_an_agents_edit_asks_git_nothing_twice(tree: RunTree, git_calls: list[tuple[str, ...]]) -> None:
    base = tip_of(tree).commit
    (tree.path / "src" / "app.py").write_text("def answer():\n    return 42\n")
    git_calls.clear()
    settled = settle(tree, "r1", base, CODER, "work")
    assert settled.commit and settled.tip == settled.commit == git(tree.path, "rev-parse", "HEAD")
    repeated = [call for call, count in Counter(git_calls).items() if count > 1]
    assert repeated == []


def test_a_few_changes_are_staged_by_name_without_walking_the_worktree(
        tree: RunTree, git_calls: list[tuple[str, ...]]) -> None:
    (tree.path / "src" / "app.py").write_text("def answer():\n    return 42\n")
    git_calls.clear()
    assert snapshot(tree, CODER, "edit") is not None
    adds = [call for call in git_calls if call[0] == "add"]
    assert adds and all("." not in call for call in adds)  # no `add -- .`: only the changed path
    assert git(tree.path, "show", "--name-only", "--format=", "HEAD") == "src/app.py"


def test_staging_by_name_commits_what_a_whole_walk_would(tree: RunTree) -> None:
    """Edits, a deletion, a new directory holding junk and a kept-out report: the same tree either way."""
    (tree.path / "src" / "app.py").write_text("changed\n")
    (tree.path / "README.md").unlink()
    (tree.path / "new" / "__pycache__").mkdir(parents=True)
    (tree.path / "new" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"junk")
    (tree.path / "new" / "module.py").write_text("x = 1\n")
    (tree.path / "report.xml").write_text("<testsuite/>")
    whole_walk = working_tree_id(tree, ("report.xml",))
    commit = snapshot(tree, CODER, "edits", ("report.xml",))
    assert commit is not None and tip_of(tree).tree == whole_walk
    files = git(tree.path, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    assert "new/module.py" in files and "README.md" not in files
    assert not any("__pycache__" in name or name == "report.xml" for name in files)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def lean(pid: int | None) -> bool:
    return bool(pid) and "orchestra.core.supervise.lean_watch" in cmdline(pid)


def test_a_run_in_review_is_watched_leanly_and_an_edit_still_makes_its_evidence_stale(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRA_WATCH_IDLE", "24")  # lean after a quarter of it: 6 s without a change
    fleet = make_fleet(repo, score_text({"coder": FIX}, [
        {"id": "fix", "intent": "Make answer() return 42", "allow": ["src/**"],
         "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review" and run.gates["check"].status == "passed", run.message
    pid = run.supervisor_pid
    wait_for(lambda: lean(fleet.get(run.id).supervisor_pid), timeout=20,
             message="the supervisor to become the lean watcher once its gates are final")
    watched = fleet.get(run.id)
    assert watched.supervisor_pid == pid and supervisor_alive(watched)  # the same process, still the supervisor
    assert fleet.resume_watchers() == []

    (Path(run.worktree) / "src" / "app.py").write_text("def answer():\n    return 43\n")
    changed = wait_for(lambda: (r := fleet.get(run.id)).candidate != run.candidate and r, timeout=20,
                       message="the lean watcher to hand back and the edit to be committed")
    assert git(repo, "show", f"{changed.candidate}:src/app.py") == "def answer():\n    return 43"
    assert wait_settled(fleet, run.id).gates["check"].status == "failed"  # verified again: the edit broke it
    wait_for(lambda: lean(fleet.get(run.id).supervisor_pid), timeout=20, message="the watcher to be lean again")
    assert fleet.get(run.id).supervisor_pid == pid

    rejected = fleet.reject(run.id, "enough")  # a decision stops the lean watcher as it would the supervisor
    assert rejected.state == "rejected" and not lean(pid) and not processes_with(f"{fleet.repo.state_dir} {run.id}")


def test_a_run_asks_git_status_once_from_its_agents_end_to_its_watch(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The agent's work is committed after the watch has started, so the watch does not walk the worktree again
    (git status reads every file's metadata: on 20,000 files, a second one cost each run as much as the rest)."""
    trace = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # every git the supervisor runs says so, with its arguments
    fleet = make_fleet(repo, score_text({"coder": FIX}, [
        {"id": "fix", "intent": "x", "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))
    run = wait_settled(fleet, fleet.spawn("fix")[0].id)
    assert run.state == "review" and run.gates["check"].status == "passed", run.message
    statuses = [line for line in trace.read_text().splitlines() if "built-in: git" in line and " status " in line]
    assert len(statuses) == 1, statuses

    (Path(run.worktree) / "src" / "app.py").write_text("def answer():\n    return 43\n")  # and the watch sees edits
    changed = wait_for(lambda: (r := fleet.get(run.id)).candidate != run.candidate and r, timeout=20,
                       message="the edit made in review to be committed")
    assert git(repo, "show", f"{changed.candidate}:src/app.py") == "def answer():\n    return 43"


def test_the_notifier_keeps_what_changed_between_its_start_and_its_first_wait(tmp_path: Path) -> None:
    from orchestra.core.base.watch import Notifier
    (tmp_path / "src").mkdir()
    notifier = Notifier(str(tmp_path))
    try:
        (tmp_path / "src" / "app.py").write_text("x = 1\n")  # before anyone waits
        (tmp_path / "src" / "__pycache__").mkdir()
        (tmp_path / "src" / ".app.py.swp").write_text("")
        changes = notifier.wait(debounce_ms=200, timeout_ms=5000)
        assert changes == {str(tmp_path / "src" / "app.py")}
        assert notifier.wait(debounce_ms=200, timeout_ms=100) == set()  # nothing since: a timeout
    finally:
        notifier.close()


def test_the_supervisors_of_a_spawn_are_forked_from_one_process_that_loaded_their_modules_once(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # every Python process lists what it imports, on stderr
    names = ["a1", "a2", "a3"]
    fleet = make_fleet(repo, score_text(dict.fromkeys(names, FIX), [
        {"id": "fix", "intent": "x", "agents": names, "verify": [{"name": "check", "command": "grep -q 42 src/app.py"}]}]))
    runs = [wait_settled(fleet, run.id) for run in fleet.spawn("fix")]
    assert all(run.state == "review" and run.gates["check"].status == "passed" for run in runs)
    loaded = (" orchestra.core.gates.verifier\n", " detect_secrets.core.scan\n")  # a supervisor's, the secret scan's
    assert all(module in (fleet.repo.state_dir / "launch.log").read_text() for module in loaded)
    for run in runs:  # each supervisor is a forked copy: it loaded none of it again
        assert not any(module in (fleet.store.run_dir(run.id) / "supervisor.log").read_text() for module in loaded)
        assert supervisor_alive(run)  # recognised as its run's supervisor: its command line names it alone
        assert cmdline(run.supervisor_pid)[2:6] == ["orchestra.core.supervise.supervisor", str(fleet.repo.state_dir),
                                                    run.id, "--mode"]


def test_a_launcher_killed_after_its_first_fork_leaves_every_run_supervised_once_or_interrupted(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.core.fleet import fleet as fleet_module
    monkeypatch.setattr(fleet_module, "STARTING_GRACE", 1.0)  # a run with no supervisor on record is found sooner
    monkeypatch.setenv("ORCHESTRA_FAULT", "launch.forked")  # SIGKILL before it reports the first pid
    names = ["a1", "a2", "a3"]
    fleet = make_fleet(repo, score_text(dict.fromkeys(names, FIX), [{"id": "fix", "intent": "x", "agents": names}]))
    runs = fleet.spawn("fix")
    monkeypatch.delenv("ORCHESTRA_FAULT")
    ended = [wait_state(fleet, run.id, "review", "interrupted") for run in runs]
    assert ended[0].state == "review"  # forked before the launcher died: it recorded itself
    for run in ended:
        assert len(processes_with(f"{fleet.repo.state_dir} {run.id} ")) <= 1  # never two supervisors of one run
        if run.state == "interrupted":  # handed over, never forked: nothing half-done, and a redirect goes on
            # Its worktree was never checked out: committing it "as the agent left it" would delete every file.
            redirected = wait_settled(fleet, fleet.redirect(run.id, "go on").id)
            assert git(repo, "log", "--format=%s", f"{run.base}..{redirected.branch}").splitlines() == [
                f"{run.agent}: work on run {run.id}"], "only the redirected agent's own work is on the branch"
            assert redirected.state == "review", "\n".join(map(str, fleet.store.read_events_tail(run.id, 10000)[0]))


def test_a_run_whose_supervisor_died_before_its_checkout_is_redirected_without_deleting_every_file(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRA_FAULT", "supervise.checkout")  # SIGKILL before the worktree has its files
    fleet = make_fleet(repo, score_text({"coder": FIX}, [{"id": "fix", "intent": "x"}]))
    run = fleet.spawn("fix")[0]
    monkeypatch.delenv("ORCHESTRA_FAULT")
    interrupted = wait_state(fleet, run.id, "interrupted")
    assert interrupted.started is None and "before its agent started" in interrupted.message
    redirected = wait_settled(fleet, fleet.redirect(run.id, "go on").id)
    assert redirected.state == "review", redirected.message
    # Its empty worktree was not committed "as the agent left it" (every file deleted): only the agent's work is.
    assert git(repo, "log", "--format=%s", f"{run.base}..{redirected.branch}").splitlines() == [
        f"coder: work on run {run.id}"]
    assert redirected.changed_paths == ["src/app.py"]


def test_spawning_many_runs_reads_each_port_holders_record_once(
        repo: Path, make_fleet: MakeFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestra.core.runs.store import RunStore
    from orchestra.core.supervise import ports
    loads: list[tuple[str, str]] = []

    class Counted(RunStore):
        def load(self, run_id: str):  # type: ignore[no-untyped-def]
            loads.append((str(self.state_dir), run_id))
            return super().load(run_id)
    monkeypatch.setattr(ports, "RunStore", Counted)
    names = [f"a{n}" for n in range(6)]
    fleet = make_fleet(repo, score_text(dict.fromkeys(names, "true"), [{"id": "many", "intent": "x", "agents": names}]))
    runs = fleet.spawn("many")
    assert len({run.port for run in runs}) == 6
    # Each allocation used to read every holder again: 15 loads of the first 5 runs.
    assert [holder for holder, count in Counter(loads).items() if count > 1] == []
    for run in runs:
        wait_settled(fleet, run.id)


def test_the_lean_watcher_finds_what_changed_before_it_watched(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "a.py").write_text("a = 1\n")
    moment = time.time() + 5  # everything so far is older than this
    assert not changed_since(str(tmp_path), moment)
    (tmp_path / "src" / "pkg" / "__pycache__").mkdir()
    os.utime(tmp_path / "src" / "pkg", (moment - 10, moment - 10))  # the new cache directory alone changed
    assert not changed_since(str(tmp_path), moment)
    os.utime(tmp_path / "src" / "pkg" / "a.py", (moment + 1, moment + 1))
    assert changed_since(str(tmp_path), moment)


@contextmanager
def gate_slot(lock_dir: Path, count: int) -> Iterator[None]:
    slots = GateSlots(lock_dir, count)
    slots.acquire()
    try:
        yield
    finally:
        slots.release()


@pytest.mark.parametrize("turn", [slot_held, gate_slot], ids=["checkout", "gate"])
def test_a_waiter_takes_whichever_slot_frees_first(tmp_path: Path, turn: Callable,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()
    held = []
    for slot in range(2):  # both slots busy, as when 16 runs start at once
        fd = os.open(slots / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.append(fd)
    got_turn, done, tried_both = threading.Event(), threading.Event(), threading.Event()
    refused: list[int] = []
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:  # notes when the waiter has found both slots taken
        try:
            real_flock(fd, operation)
        except BlockingIOError:
            if threading.current_thread() is waiter:
                refused.append(fd)
                if len(refused) >= 2:
                    tried_both.set()
            raise
    monkeypatch.setattr(fcntl, "flock", flock)

    def wait_for_a_slot() -> None:
        with turn(slots, 2):
            got_turn.set()
            done.wait(10)
    waiter = threading.Thread(target=wait_for_a_slot)
    waiter.start()
    try:
        assert tried_both.wait(10), "the waiter never tried the slots"
        os.close(held.pop(1 - os.getpid() % 2))  # the slot a waiter bound in advance by its pid would not watch
        assert got_turn.wait(10), "the waiter never took the slot that was freed"
    finally:
        done.set()
        for fd in held:  # first, so that a waiter stuck on the slot still held can end
            os.close(fd)
        waiter.join()


@pytest.mark.parametrize("turn", [slot_held, gate_slot], ids=["checkout", "gate"])
def test_slot_locks_are_kept_in_a_private_directory(tmp_path: Path, turn: Callable) -> None:
    with turn(tmp_path / "slots", 2):
        pass
    assert stat.S_IMODE((tmp_path / "slots").stat().st_mode) == 0o700


def test_the_lean_watcher_loads_the_notifier_without_asyncio_or_anyio() -> None:
    probe = ("import sys; from orchestra.core.supervise import lean_watch; lean_watch.Notifier('.'); "
             "print(' '.join(m for m in ('asyncio', 'anyio', 'watchfiles', 'orchestra.core.runs') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


@pytest.mark.parametrize("new_file", ["src/added.py", "notes/prompt.txt", "a/b/c/deep.txt"])
def test_a_new_file_alone_is_committed_when_staged_by_name(tree: RunTree, new_file: str) -> None:
    """A new file in a tracked directory or in new ones, nothing else changed (the demo's tester, a CLI
    writing notes/): git must be handed it without exclude pathspecs beside it, or it stages nothing."""
    (tree.path / new_file).parent.mkdir(parents=True, exist_ok=True)
    (tree.path / new_file).write_text("new\n")
    commit = snapshot(tree, CODER, "one new file")
    assert commit is not None
    assert new_file in git(tree.path, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
