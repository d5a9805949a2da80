"""Watching a worktree for edits: watchfiles' compiled notifier on its own, and which changes are edits.

Both watchers of a run use it, so they agree on what an edit is: the supervisor's (gates.verifier), and the
lean watcher a run in review becomes (supervise.lean_watch). It loads only watchfiles' compiled module, not
the watchfiles package, which imports anyio and asyncio: the lean watcher must stay small, and a supervisor
starts faster without them. Only the standard library's smallest modules are imported here.
"""

from __future__ import annotations

import os
from typing import Any

# A change under these is no edit of the candidate (version control's own files, caches, virtualenvs).
IGNORED_PARTS = frozenset({".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                           ".hypothesis", ".tox", ".venv", ".idea", "node_modules"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".pyd", "~")  # compiled Python, editors' backups
IGNORED_PREFIXES = (".#", "flycheck_")  # editors' lock and scratch files
STEP_MS = 50  # how often a waiting notifier looks at what it has collected (and at its stop event)


def ignored(name: str) -> bool:
    """Whether nothing under a file or directory of this name is an edit of the candidate."""
    return (name in IGNORED_PARTS or name.endswith(IGNORED_SUFFIXES) or name.startswith(IGNORED_PREFIXES)
            or name == ".DS_Store" or (len(name) > 4 and name[-4:-1] == ".sw"))  # the last: vim's swap files


def relevant(path: str, root: str) -> bool:
    """Whether a change at path (under root) could change the run's candidate."""
    return not any(ignored(part) for part in os.path.relpath(path, root).split(os.sep))


def notifier_class() -> type:
    """watchfiles' compiled notifier, loaded on its own (see the module's notes)."""
    import importlib.machinery
    import importlib.util
    spec = importlib.util.find_spec("watchfiles")  # finds the package without importing it
    folder = os.path.dirname(spec.origin) if spec and spec.origin else ""
    name = "watchfiles._rust_notify"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "_rust_notify" + suffix)
        if os.path.isfile(path):
            loader = importlib.machinery.ExtensionFileLoader(name, path)
            module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
            loader.exec_module(module)
            return module.RustNotify
    from watchfiles._rust_notify import RustNotify  # an unusual install: the package's own way
    return RustNotify


class Notifier:
    """A recursive watch of root from its construction on: a change made after it is kept until `wait` takes it.
    FileNotFoundError when root does not exist."""

    def __init__(self, root: str) -> None:
        self.root = root
        # (paths, debug, force polling, poll delay, recursive, ignore permission denied)
        self._notify = notifier_class()([root], False, False, 0, True, False)

    def wait(self, debounce_ms: int, timeout_ms: int, stop: Any = None, step_ms: int = STEP_MS) -> set[str] | None:
        """Block until there are changes (the edits among them: possibly none), timeout_ms passes (an empty set;
        0 waits for ever) or stop.is_set() (None). Once a change is seen, more are gathered for up to debounce_ms;
        what is collected (and stop) is looked at every step_ms."""
        found = self._notify.watch(debounce_ms, step_ms, timeout_ms, stop)
        if found == "stop":
            return None
        if isinstance(found, str):  # "timeout", or "signal" (a signal arrived while waiting in the main thread)
            return set()
        return {path for _change, path in found if relevant(path, self.root)}

    def close(self) -> None:
        self._notify.close()
