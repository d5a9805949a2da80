"""Gates test the tree they claim to test (Python): the worktree's code first, and a warning otherwise.

An editable install in the user's virtualenv (a `.pth` file, or an import hook) or a PYTHONPATH
pointing at the user's checkout makes `python -m pytest` in a worktree import the checkout's package.
So gates and setup commands get the worktree (and its `src/`) first on PYTHONPATH, and a
`sitecustomize.py` of the run's own that, when each Python process of a gate exits, notes which
modules it imported from a checkout of the repository that is not the run's worktree (the user's
checkout, another run's worktree). The gate then carries a warning. The hook only reads `sys.modules`
at exit, never changes what is imported, and swallows every error of its own: a gate runs as it would
without it. It hands over to any other `sitecustomize` on the path (a distribution's, a project's).
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestra.core.base.files import write_atomic
from orchestra.core.gates.verifier import Verifier
from orchestra.core.git.repo import Repository
from orchestra.core.jail import Jail
from orchestra.core.runs.run import Gate

PYTHON_DIR = "python"  # in the run's private directory: the sitecustomize and its report
REPORT_FILE = "imports-outside.txt"
SHOWN_MODULES = 5

SITECUSTOMIZE = '''\
# Written by orchestra for a run's gates: at exit, notes the modules imported from a checkout of the
# repository other than this run's worktree. It changes nothing and never fails.


def _orchestra_note_imports():
    import atexit
    import os
    import sys

    roots = [r for r in os.environ.get("ORCHESTRA_IMPORT_ROOTS", "").split(os.pathsep) if r]
    report, own = os.environ.get("ORCHESTRA_IMPORT_REPORT"), os.environ.get("ORCHESTRA_WORKTREE")
    if not roots or not report or not own:
        return
    roots = {os.path.abspath(r) for r in roots} | {os.path.realpath(r) for r in roots}
    owns = {os.path.abspath(own), os.path.realpath(own), os.path.dirname(os.path.abspath(__file__))}
    installed = {os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix) if p}

    def under(path, tops):
        return any(path == top or path.startswith(top.rstrip(os.sep) + os.sep) for top in tops)

    def note():
        try:
            found = []
            for name, module in list(sys.modules.items()):
                path = getattr(module, "__file__", None)
                if not isinstance(path, str):
                    continue
                path = os.path.abspath(path)
                parts = path.split(os.sep)
                if (not under(path, roots) or under(path, owns) or under(path, installed)
                        or "site-packages" in parts or "dist-packages" in parts):
                    continue
                found.append(name + "\\t" + path + "\\n")
            if found:
                fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, "".join(sorted(found)[:100]).encode("utf-8", "replace"))
                finally:
                    os.close(fd)
        except BaseException:
            pass

    atexit.register(note)


def _orchestra_hand_over():
    import importlib.util
    import os
    import sys
    from importlib.machinery import PathFinder

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


for _step in (_orchestra_note_imports, _orchestra_hand_over):
    try:
        _step()
    except BaseException:
        pass
'''


def python_dir(private: Path) -> Path:
    return private / PYTHON_DIR


def python_environment(jail: Jail, env: dict[str, str]) -> dict[str, str]:
    """What a gate's or setup command's environment gets on top of env: PYTHONPATH with the hook, the
    worktree's `src/` (when there is one) and the worktree first, then what was declared; and where the
    hook looks and reports."""
    hook_dir = python_dir(jail.private)
    hook = hook_dir / "sitecustomize.py"
    try:
        if not hook.is_file() or hook.read_text(encoding="utf-8") != SITECUSTOMIZE:  # rewritten if changed
            hook_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(hook, SITECUSTOMIZE)
        first = [str(hook_dir)]
    except OSError:
        first = []  # no hook: the worktree still comes first
    src = jail.worktree / "src"
    first += [str(src)] if src.is_dir() else []
    first.append(str(jail.worktree))
    declared = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    checkout = jail.common_dir.parent
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(first + declared)),
            "ORCHESTRA_IMPORT_ROOTS": os.pathsep.join([str(checkout), str(jail.worktree.parent)]),
            "ORCHESTRA_IMPORT_REPORT": str(hook_dir / REPORT_FILE)}


def import_warnings(report: Path) -> list[str]:
    """The warning a gate carries for what its report names (none when nothing was imported from outside)."""
    try:
        lines = report.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    modules: dict[str, str] = {}
    for line in lines:
        name, _, path = line.partition("\t")
        if name and path:
            modules.setdefault(path, name)
    if not modules:
        return []
    shown = [f"{name} ({path})" for path, name in sorted(modules.items(), key=lambda item: item[1])[:SHOWN_MODULES]]
    more = f" and {len(modules) - SHOWN_MODULES} more" if len(modules) > SHOWN_MODULES else ""
    warning = (f"imported code from outside the run's worktree: {', '.join(shown)}{more}. An editable install "
               "or PYTHONPATH points at your checkout (or another run's worktree): this gate may not have tested "
               "the run's code.")
    return [warning]


class ImportCheckedVerifier(Verifier):
    """A verifier whose command gates carry a warning when they imported Python code from outside the
    run's worktree."""

    def report_path(self) -> Path:
        common_dir = self.store.state_dir.parent
        private = Repository(root=common_dir.parent, common_dir=common_dir).jails_dir / self.run_id
        return python_dir(private) / REPORT_FILE

    async def run_one(self, check: dict, tree: str) -> Gate:
        report = self.report_path()
        report.unlink(missing_ok=True)  # checks run one at a time: what the report holds is this one's
        gate = await super().run_one(check, tree)
        warnings = import_warnings(report)
        if warnings:
            gate.warnings = warnings
            gate.summary = f"{gate.summary}; imported code from outside its worktree"
        return gate
