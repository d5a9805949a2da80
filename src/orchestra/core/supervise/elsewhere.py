"""Running a check on another tree than the candidate's (the merge base's for coverage and benchmarks,
the base's with the candidate's tests on top for proving tests), inside the run's jail.

The tree is written (git.export) into a directory of its own under the run's private directory, which
the jail shows writable wherever the worktree is; the command starts there with a gate's environment
(Python finds that tree's code first, not the worktree's), under a gate slot and the check's timeout, and
its log goes to `gates/<label>/<check>.log`. The report files the check names are removed from the
exported tree first, so only what this command writes is read. Dependency directories the worktree holds
untracked (a virtualenv, node_modules: what setup installed) are linked in, so the command finds what it
finds in the worktree. The directory is removed afterwards; one a killed supervisor left behind goes the
next time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.core.base.names import is_check_name
from orchestra.core.gates.commands import GateSlots, Launch, run_check
from orchestra.core.gates.evidence import OtherTree
from orchestra.core.gates.verifier import REPORT_KEYS
from orchestra.core.git.export import export_tree
from orchestra.core.jail import command_in
from orchestra.core.runs.run import Gate
from orchestra.core.supervise.imports import REPORT_FILE, import_warnings, python_dir
from orchestra.core.supervise.jails import gate_environment

if TYPE_CHECKING:
    from orchestra.core.supervise.supervisor import Supervisor

TREES_DIR = "trees"  # in the run's private directory
DEPENDENCY_DIRS = ("node_modules", ".venv", "venv")
# The jail starts processes in the worktree: the shell moves to the other tree before the command runs.
IN_DIRECTORY = 'cd -- "$0" && exec /bin/sh -c "$1"'


async def run_on_tree(supervisor: Supervisor, other: OtherTree) -> tuple[Gate, Any]:
    """The gate of other's command run on its tree, and what other.collect read there."""
    name, label = other.check.get("name"), other.label
    if not is_check_name(name) or not is_check_name(label):
        raise ValueError(f"invalid check name {name!r} or label {label!r}: the log would not be in gates/")
    log_path = supervisor.store.run_dir(supervisor.run_id) / "gates" / label / f"{name}.log"
    slots = GateSlots(supervisor.store.state_dir / "gate-slots")
    await asyncio.to_thread(slots.acquire)
    try:
        directory = await asyncio.to_thread(materialise, supervisor, other)
        try:
            return await _run_in(supervisor, other, directory, log_path)
        except asyncio.CancelledError:
            remove_tree(directory)  # a stop: the supervisor may exit right after, so not in a thread
            raise
        finally:
            if directory.exists():
                await asyncio.to_thread(remove_tree, directory)
    finally:
        slots.release()


async def _run_in(supervisor: Supervisor, other: OtherTree, directory: Path,
                  log_path: Path) -> tuple[Gate, Any]:
    check = other.check
    report = python_dir(supervisor.jail.private) / REPORT_FILE
    report.unlink(missing_ok=True)
    gate = await run_check(str(check["name"]), str(check["command"]), directory, other.commit, log_path,
                           float(check.get("timeout") or 600), check.get("junit"),
                           launcher(supervisor, directory), supervisor.store.redact)
    gate.warnings = import_warnings(report)
    collected = await asyncio.to_thread(other.collect, directory) if other.collect else None
    return gate, collected


def launcher(supervisor: Supervisor, directory: Path) -> Launch:
    """How the command starts: in the run's jail, in directory, with a gate's environment for that tree
    (its code first on PYTHONPATH; code imported from the worktree or the checkout is noted)."""
    jail = supervisor.jail
    env = gate_environment(dataclasses.replace(jail, worktree=directory), supervisor.run)
    env["ORCHESTRA_WORKTREE"] = str(directory)
    env["ORCHESTRA_IMPORT_ROOTS"] = os.pathsep.join([str(jail.common_dir.parent), str(jail.worktree.parent)])

    def launch(command: str) -> tuple[list[str], dict[str, str]]:
        return command_in(supervisor.jail, ["/bin/sh", "-c", IN_DIRECTORY, str(directory), command]), dict(env)
    return launch


def materialise(supervisor: Supervisor, other: OtherTree) -> Path:
    """A new directory holding other's tree, its report files removed, the worktree's dependencies linked."""
    root = supervisor.jail.private / TREES_DIR
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_leftovers(root)
    directory = root / f"{os.getpid()}-{other.label}-{os.urandom(4).hex()}"
    try:
        export_tree(supervisor.store.state_dir, other.commit, directory, other.overlay, other.overlay_from)
        for key in REPORT_KEYS:
            if other.check.get(key):
                remove_inside(directory, str(other.check[key]))
        link_dependencies(supervisor.worktree, directory)
    except BaseException:
        remove_tree(directory)
        raise
    return directory


def remove_inside(root: Path, relative: str) -> None:
    """Remove the file at relative under root, unless reaching it leads out of root (through a link)."""
    path = root / relative
    try:
        if path.parent.resolve().is_relative_to(root.resolve()) and not path.is_dir():
            path.unlink(missing_ok=True)
    except OSError:
        pass


def link_dependencies(worktree: Path, directory: Path) -> None:
    """Link the worktree's dependency directories the tree itself does not hold."""
    for name in DEPENDENCY_DIRS:
        source = worktree / name
        if source.is_dir() and not source.is_symlink() and not os.path.lexists(directory / name):
            (directory / name).symlink_to(source, target_is_directory=True)


def remove_leftovers(root: Path) -> None:
    """Remove the trees a supervisor that is gone left behind (its pid starts their names)."""
    for entry in root.iterdir():
        pid = entry.name.split("-", 1)[0].lstrip(".")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            remove_tree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_tree(path: Path) -> None:
    """Remove path and everything under it, directories the command made read-only included; links are
    removed, never followed."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    try:
        shutil.rmtree(path)
    except OSError:
        _make_removable(path)
        shutil.rmtree(path, ignore_errors=True)


def _make_removable(path: Path) -> None:
    """Give the owner full access to every directory under path (links left alone)."""
    os.chmod(path, stat.S_IRWXU)
    for parent, dirs, _files in os.walk(path):
        for name in dirs:
            child = os.path.join(parent, name)
            if not os.path.islink(child):
                try:
                    os.chmod(child, stat.S_IRWXU)
                except OSError:
                    pass
